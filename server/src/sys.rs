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

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs on CPU time no other
/// thread wants. For work off the request path (the audit writer) whose bursts would
/// otherwise take a core from the threads answering requests. Elsewhere, does nothing.
pub fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param` for the duration of the call; pid 0
        // is the calling thread.
        #[allow(unsafe_code)]
        let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the thread's priority");
        }
    }
}
