//! The help an operator reads, and usage errors: every command shows examples
//! and the exit codes, and a bad command line exits 2 without touching AWS.

mod support;

use support::cli;

#[tokio::test]
async fn every_command_has_examples_and_exit_codes_in_its_help() {
    for command in [
        vec!["--help"],
        vec!["send", "--help"],
        vec!["flood", "--help"],
        vec!["verify", "--help"],
        vec!["dlq", "peek", "--help"],
        vec!["dlq", "redrive", "--help"],
        vec!["dlq", "purge", "--help"],
    ] {
        let run = cli(&command).await;
        assert_eq!(run.code, 0, "{command:?}: {}", run.stderr);
        assert!(
            run.stdout.contains("Examples:"),
            "{command:?}:\n{}",
            run.stdout
        );
        assert!(run.stdout.contains("Exit codes:"), "{command:?}");
        assert!(
            run.stdout.contains("3  AWS or Mackerel unreachable"),
            "{command:?}"
        );
    }
}

#[tokio::test]
async fn the_mackerel_key_from_the_environment_never_shows_in_help() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sfn-mackerel"));
    let output = command
        .args(["verify", "--help"])
        .env("MACKEREL_API_KEY", "secret-key-123")
        .output()
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&output.stdout).contains("secret-key-123"));
}

#[tokio::test]
async fn the_mackerel_key_is_never_a_flag_and_the_help_says_where_it_comes_from() {
    let help = cli(&["verify", "--help"]).await;
    assert!(
        help.stdout.contains("MACKEREL_API_KEY only"),
        "{}",
        help.stdout
    );
    assert!(
        !help.stdout.contains("--mackerel-api-key"),
        "{}",
        help.stdout
    );
    let flag = cli(&[
        "verify",
        "--manifest",
        "m.jsonl",
        "--skip-dlq",
        "--mackerel-api-key",
        "secret-key-123",
    ])
    .await;
    assert_eq!(flag.code, 2);
    assert!(!flag.stderr.contains("secret-key-123"), "{}", flag.stderr);
}

#[tokio::test]
async fn a_bad_command_line_exits_2() {
    for command in [
        vec!["send", "--queue-url", "http://127.0.0.1:1/q"],
        vec!["flood", "--queue-url", "http://127.0.0.1:1/q"],
        vec![
            "flood",
            "--queue-url",
            "http://127.0.0.1:1/q",
            "--count",
            "1",
            "--duration",
            "5m",
        ],
        vec!["dlq", "peek"],
        vec!["nonsense"],
    ] {
        let run = cli(&command).await;
        assert_eq!(run.code, 2, "{command:?}: {}", run.stderr);
    }
}

#[tokio::test]
async fn a_bad_load_shape_names_the_flag_and_exits_2() {
    let run = cli(&[
        "flood",
        "--queue-url",
        "http://127.0.0.1:1/q",
        "--count",
        "10",
        "--malformed-fraction",
        "0.7",
        "--too-old-fraction",
        "0.7",
    ])
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--too-old-fraction"), "{}", run.stderr);
}

#[tokio::test]
async fn an_unknown_reason_filter_lists_the_known_ones() {
    let run = cli(&[
        "dlq",
        "redrive",
        "--dlq-url",
        "http://127.0.0.1:1/q",
        "--reason",
        "typo",
    ])
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown_service"), "{}", run.stderr);
    assert!(run.stderr.contains("retries_exhausted"), "{}", run.stderr);
}
