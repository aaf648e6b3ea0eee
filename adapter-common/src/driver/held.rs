//! The held commands: those that would write, kept in order while the
//! session's write budget has no room, so that their callers wait and the
//! driver's memory stays bounded by the budget.
//!
//! Invariant: the queue exists only while it holds something (boxed, made
//! on the first held command, dropped when the last goes): most clients
//! never fill their budget, and an idle client's task keeps 8 bytes for it.

use std::collections::VecDeque;

use wslink_core::Message;

use crate::command::Command;

/// Commands that would write, held in order while the write budget has no
/// room. Made on the first: most clients never fill their budget.
#[derive(Default)]
#[allow(clippy::box_collection, reason = "the box is the point: 8 bytes in the task instead of 32")]
pub(super) struct Held(Option<Box<VecDeque<Command>>>);

impl Held {
    /// Whether no command is held.
    pub(super) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|q| q.is_empty())
    }

    /// Holds `command` behind the others.
    pub(super) fn push(&mut self, command: Command) {
        self.0.get_or_insert_default().push_back(command);
    }

    /// The command held longest, if any.
    pub(super) fn pop(&mut self) -> Option<Command> {
        let queue = self.0.as_mut()?;
        let command = queue.pop_front();
        if queue.is_empty() {
            self.0 = None;
        }
        command
    }

    /// Takes the posts out, in order (the session closed: they are refused before `Closed`).
    pub(super) fn take_posts(&mut self) -> Vec<Message> {
        let Some(queue) = self.0.as_mut() else { return Vec::new() };
        let mut posts = Vec::new();
        queue.retain_mut(|command| match command {
            Command::Post(message) => {
                posts.push(std::mem::replace(message, Message::Binary(bytes::Bytes::new())));
                false
            }
            _ => true,
        });
        if queue.is_empty() {
            self.0 = None;
        }
        posts
    }
}
