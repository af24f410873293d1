//! The static checks of the dashboards, Prometheus rules, Kubernetes manifests, Dockerfile
//! and systemd unit (`deploy/check.sh`) pass.
//!
//! The script skips a check whose tool is missing and says so; under CI (`CI=true`) a
//! missing tool fails it.

mod common;

use std::process::Command;

use common::crate_dir;

#[test]
fn deploy_check_script_passes() {
    let output = Command::new("bash")
        .arg("deploy/check.sh")
        .current_dir(crate_dir())
        .output()
        .expect("run bash deploy/check.sh");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{said}");
    assert!(output.status.success(), "deploy/check.sh failed:\n{said}");
    assert!(said.contains(" 0 failed"), "{said}");
}
