use super::*;

fn config(idle_minutes: u64, max_sessions: usize) -> SessionConfig {
    SessionConfig {
        idle_minutes,
        max_sessions,
        ..SessionConfig::default()
    }
}

#[test]
fn turns_count_up_and_flags_carry_to_later_turns() {
    let sessions = Sessions::new(&SessionConfig::default()).unwrap();
    let first = sessions.begin("k", Some("s1"));
    assert_eq!((first.id.as_deref(), first.turn), (Some("s1"), 1));
    assert!(first.flags.is_empty());
    sessions.flag("k", Some("s1"), &["untrusted_content_read".into()]);
    sessions.flag(
        "k",
        Some("s1"),
        &["pii_seen".into(), "untrusted_content_read".into()],
    );
    let second = sessions.begin("k", Some("s1"));
    assert_eq!(second.turn, 2);
    assert_eq!(second.flags, ["untrusted_content_read", "pii_seen"]);
    // No id, no session.
    assert_eq!(sessions.begin("k", None), Session::default());
    assert_eq!(sessions.begin("k", Some("")), Session::default());
    assert_eq!(sessions.len(), 1);
}

#[test]
fn the_same_id_with_another_key_is_another_session() {
    let sessions = Sessions::new(&SessionConfig::default()).unwrap();
    sessions.begin("agent-a", Some("shared-id"));
    sessions.flag(
        "agent-a",
        Some("shared-id"),
        &["untrusted_content_read".into()],
    );
    let other = sessions.begin("agent-b", Some("shared-id"));
    assert_eq!(other.turn, 1);
    assert!(
        other.flags.is_empty(),
        "no key sees or taints another's session"
    );
    // Flagging a session that was never begun does nothing.
    sessions.flag("agent-c", Some("new"), &["x".into()]);
    assert_eq!(sessions.len(), 2);
}

#[test]
fn an_idle_session_starts_over() {
    let sessions = Sessions::new(&config(0, 10)).unwrap();
    sessions.begin("k", Some("s"));
    sessions.flag("k", Some("s"), &["pii_seen".into()]);
    std::thread::sleep(Duration::from_millis(5));
    let again = sessions.begin("k", Some("s"));
    assert_eq!(again.turn, 1);
    assert!(again.flags.is_empty());
}

#[test]
fn a_full_table_drops_unflagged_sessions_before_flagged_ones() {
    let sessions = Sessions::new(&config(60, 64)).unwrap();
    sessions.begin("k", Some("flagged"));
    sessions.flag("k", Some("flagged"), &["untrusted_content_read".into()]);
    // A flood of new sessions, far more than the table holds.
    for i in 0..1_000 {
        sessions.begin("k", Some(&format!("flood-{i}")));
        assert!(sessions.len() <= 64);
    }
    let kept = sessions.begin("k", Some("flagged"));
    assert_eq!(kept.turn, 2, "the flagged session survived the flood");
    assert_eq!(kept.flags, ["untrusted_content_read"]);
}
