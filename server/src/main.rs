//! The `sluice` binary.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: the data plane allocates and frees many small
/// values per request (JSON, policy values), where glibc's malloc cost a fifth of the CPU
/// under load and fragmented memory across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sluice_server::sys::ignore_file_size_signal();
    sluice_server::cli::main()
}
