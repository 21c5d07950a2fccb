//! The few operating-system calls Sluice makes that std does not offer. Every `unsafe`
//! block of the server lives here.

/// Makes a file-size limit (`RLIMIT_FSIZE`, e.g. from `ulimit -f` or a container's
/// settings) fail the offending write with `EFBIG`, which the audit writer reports and
/// survives, instead of killing the whole gateway with `SIGXFSZ`.
pub fn ignore_file_size_signal() {
    #[cfg(unix)]
    {
        // SAFETY: installing `SIG_IGN` runs no handler code; it is done at startup.
        #[allow(unsafe_code)]
        let previous = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        if previous == libc::SIG_ERR {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot ignore SIGXFSZ");
        }
    }
}
