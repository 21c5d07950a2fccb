//! Command-line interface.

mod policy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sluice: a self-hosted AI gateway and agentic trust plane.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(crate::serve::ServeArgs),
    /// Work with a policy directory: test, evaluate, check, run conformance suites.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => crate::serve::main(args),
        Command::Policy(command) => policy::main(command),
    }
}
