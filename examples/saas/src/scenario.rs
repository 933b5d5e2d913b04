//! The demo's data: who signs up, what they upload, which upload is broken, and when the
//! orchestrator kills a worker.

/// A sign-up.
#[derive(Debug, Clone, Copy)]
pub struct Signup {
    /// The user's id.
    pub user_id: &'static str,
    /// Their email.
    pub email: &'static str,
    /// Their plan.
    pub tier: &'static str,
    /// How they found the platform.
    pub referral_source: Option<&'static str>,
}

/// An upload.
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    /// The file's id.
    pub file_id: &'static str,
    /// Its owner, one of [`SIGNUPS`].
    pub user_id: &'static str,
    /// Its name.
    pub filename: &'static str,
    /// Its size; 0 for [`BAD_UPLOAD`].
    pub size_bytes: u64,
}

/// The users who sign up first.
pub const SIGNUPS: [Signup; 3] = [
    Signup {
        user_id: "u-1",
        email: "ada@example.com",
        tier: "pro",
        referral_source: Some("newsletter"),
    },
    Signup {
        user_id: "u-2",
        email: "grace@example.com",
        tier: "free",
        referral_source: None,
    },
    Signup {
        user_id: "u-3",
        email: "linus@example.com",
        tier: "team",
        referral_source: Some("conference"),
    },
];

/// The uploads, one saga each, in order.
pub const UPLOADS: [Upload; 6] = [
    Upload {
        file_id: "f-1",
        user_id: "u-1",
        filename: "strategy-2026.pdf",
        size_bytes: 482_113,
    },
    Upload {
        file_id: "f-2",
        user_id: "u-2",
        filename: "notes.txt",
        size_bytes: 3_204,
    },
    Upload {
        file_id: "f-3",
        user_id: "u-3",
        filename: "okrs.docx",
        size_bytes: 55_870,
    },
    Upload {
        file_id: "f-4",
        user_id: "u-1",
        filename: "scan.pdf",
        size_bytes: 0,
    },
    Upload {
        file_id: "f-5",
        user_id: "u-2",
        filename: "market-research.pdf",
        size_bytes: 1_204_551,
    },
    Upload {
        file_id: "f-6",
        user_id: "u-3",
        filename: "retro.txt",
        size_bytes: 9_912,
    },
];

/// The broken upload (0 bytes): the file processor dead-letters it.
pub const BAD_UPLOAD: &str = "f-4";

/// The upload whose saga, once complete, makes the orchestrator kill [`VICTIM`].
pub const KILL_AFTER: &str = "f-2";

/// The worker killed midway.
pub const VICTIM: &str = "w2";

/// The worker processes.
pub const WORKERS: [&str; 3] = ["w1", "w2", "w3"];

/// The correlation id of an upload's saga.
pub fn upload_correlation_id(file_id: &str) -> String {
    format!("saga-{file_id}")
}

/// The correlation id of a sign-up.
pub fn signup_correlation_id(user_id: &str) -> String {
    format!("signup-{user_id}")
}
