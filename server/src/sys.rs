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

/// Puts the calling thread in Linux's `SCHED_IDLE` class (`idle`), where it runs on CPU
/// time no other thread wants, or back in the normal class; whether that was done. For
/// work off the request path (the audit writer) whose bursts would otherwise take a core
/// from the threads answering requests. Elsewhere, does nothing.
pub fn run_when_idle(idle: bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        let policy = if idle {
            libc::SCHED_IDLE
        } else {
            libc::SCHED_OTHER
        };
        // SAFETY: `param` is a valid `sched_param` for the duration of the call; pid 0
        // is the calling thread.
        #[allow(unsafe_code)]
        let result = unsafe { libc::sched_setscheduler(0, policy, &param) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), idle, "cannot change the thread's scheduling class");
        }
        result == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = idle;
        false
    }
}

/// Whether a thread of this process that entered `SCHED_IDLE` may leave it again: Linux
/// allows that only with `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least 20. Tried on a
/// thread of its own, which may stay stuck in it.
pub fn can_leave_idle() -> bool {
    std::thread::Builder::new()
        .name("sluice-probe".to_string())
        .spawn(|| run_when_idle(true) && run_when_idle(false))
        .ok()
        .and_then(|probe| probe.join().ok())
        .unwrap_or(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests stop loudly")]

    /// The calling thread's scheduling policy: the 41st field of its `/proc` stat line.
    fn policy() -> String {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the parenthesised name, which may hold spaces.
        let after_name = stat.rsplit_once(')').unwrap().1;
        after_name.split_whitespace().nth(38).unwrap().to_string()
    }

    #[test]
    fn a_thread_enters_and_leaves_the_idle_class() {
        std::thread::spawn(|| {
            assert!(super::run_when_idle(true));
            assert_eq!(policy(), libc::SCHED_IDLE.to_string());
            assert!(super::run_when_idle(false));
            assert_eq!(policy(), libc::SCHED_OTHER.to_string());
        })
        .join()
        .unwrap();
    }
}
