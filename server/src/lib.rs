//! `sluice`: the binary with everything that does IO, around the pure `sluice-engine`.

pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod default_policies;
pub mod gateway;
pub mod meter;
pub mod reload;
pub mod revision;
pub mod serve;
pub mod sessions;
pub mod state_file;
pub mod sys;
