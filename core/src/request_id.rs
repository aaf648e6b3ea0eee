//! [`RequestId`]: a request's id as it goes on the wire, a number or a
//! text. The session numbers its own requests; a caller may give its own
//! (ZenWebsocket's `send_message` matches replies by the `"id"` the caller
//! put in its JSON, and many exchanges use text ids such as UUIDs).

use std::fmt;

/// A request id on the wire: JSON-RPC allows a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "record", derive(serde::Serialize, serde::Deserialize), serde(untagged))]
pub enum RequestId {
    /// A numeric id (the session's own are these).
    Number(u64),
    /// A text id.
    Text(String),
}

impl From<u64> for RequestId {
    fn from(id: u64) -> Self {
        Self::Number(id)
    }
}

impl From<&str> for RequestId {
    fn from(id: &str) -> Self {
        Self::Text(id.to_owned())
    }
}

impl From<String> for RequestId {
    fn from(id: String) -> Self {
        Self::Text(id)
    }
}

/// The number as it is, the text in quotes (as JSON writes them).
impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => write!(f, "{t:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_convert_and_show_as_json_writes_them() {
        assert_eq!(RequestId::from(7), RequestId::Number(7));
        assert_eq!(RequestId::from("a-1"), RequestId::Text("a-1".into()));
        assert_eq!(RequestId::from(7).to_string(), "7");
        assert_eq!(RequestId::from("a-1").to_string(), "\"a-1\"");
    }
}
