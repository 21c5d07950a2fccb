//! Every configuration under `examples/config/` loads, validates and starts nothing broken:
//! its policy directory compiles.

use sluice_tests::repo;

#[test]
fn every_example_config_loads_and_its_policy_dir_compiles() {
    let dir = repo().join("examples/config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        let config = sluice_server::config::Config::load(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bundle = sluice_engine::Bundle::load(&config.policy_dir)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        sluice_engine::Policies::compile(&bundle, String::new())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 1);
}
