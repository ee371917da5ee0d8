//! User errors versus internal failures, and the one-line error message.
//!
//! Errors caused by what the user gave (flags, files, configuration, model
//! folders, images) are wrapped in [`UserError`]; the binary prints every error
//! as one line `error: ...` and exits with [`EXIT_USER`] for user errors and
//! [`EXIT_FAILURE`] for anything else.
use std::fmt;

/// Exit code of a user error (bad flags, missing files, bad configuration).
pub const EXIT_USER: i32 = 2;
/// Exit code of an internal failure.
pub const EXIT_FAILURE: i32 = 1;

/// Marks an error as caused by the user's input.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// A user error with a message.
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// Converts any error into a user error, keeping its whole message chain.
pub trait UserContext<T> {
    fn user_err(self) -> anyhow::Result<T>;
    fn user_ctx(self, ctx: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> UserContext<T> for Result<T, E> {
    fn user_err(self) -> anyhow::Result<T> {
        self.map_err(|e| user(one_line(&e.into())))
    }
    fn user_ctx(self, ctx: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| user(format!("{}: {}", ctx(), one_line(&e.into()))))
    }
}

/// Whether `err` (or anything in its chain) is a [`UserError`].
pub fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<UserError>())
}

/// The error and its causes joined on one line (no newlines), without
/// repeating a cause that its parent message already contains.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if s.is_empty() || parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

/// Exit code for an error.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if is_user_error(err) {
        EXIT_USER
    } else {
        EXIT_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn user_errors_are_detected_through_context_and_printed_on_one_line() {
        let e = Err::<(), _>(user("missing file\nx.png"))
            .context("explain")
            .unwrap_err();
        assert!(is_user_error(&e));
        assert_eq!(exit_code(&e), EXIT_USER);
        assert_eq!(one_line(&e), "explain: missing file x.png");
        let internal = anyhow::anyhow!("boom");
        assert_eq!(exit_code(&internal), EXIT_FAILURE);
        let wrapped: anyhow::Result<()> =
            Err(std::io::Error::other("disk")).user_ctx(|| "reading a.json".into());
        let w = wrapped.unwrap_err();
        assert!(is_user_error(&w));
        assert_eq!(one_line(&w), "reading a.json: disk");
    }
}
