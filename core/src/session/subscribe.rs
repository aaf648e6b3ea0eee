//! The subscription set's commands (subscribe, with options, unsubscribe)
//! and what a break in a numbered channel's numbering does: reported before
//! the message that showed it, then told only, resubscribed, or
//! reconnected once the messages read with it are out.

use super::*;
use crate::hooks::{Decision, Outbound};
use crate::sequence::{GapAction, Verdict};
use crate::subscriptions::Break;

impl Session {
    /// Adds channels to the subscription set; those new to it are subscribed
    /// now when open, and again after every reconnect (unless
    /// `restore_subscriptions` is off).
    pub fn subscribe(&mut self, channels: &[&str], now: Instant) -> Result<(), CommandError> {
        self.record(now, || Entry::Subscribe { channels: channels.iter().map(|c| (*c).to_owned()).collect() });
        self.add_subscriptions(channels, &SubscribeOptions::new(), now)
    }

    /// [`subscribe`](Self::subscribe) with options for these channels:
    /// whether a reconnect subscribes them again, and where their sequence
    /// numbers sit, to report a missed or repeated message
    /// (`SessionEvent::SequenceGap`, `SequenceReset`) and act on it. A
    /// channel already in the set keeps the options it was added with.
    pub fn subscribe_with(
        &mut self,
        channels: &[&str],
        options: SubscribeOptions,
        now: Instant,
    ) -> Result<(), CommandError> {
        self.record(now, || Entry::SubscribeWith {
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
            options: crate::record::format::SubscribeLine::of(&options),
        });
        self.add_subscriptions(channels, &options, now)
    }

    pub(super) fn add_subscriptions(
        &mut self,
        channels: &[&str],
        options: &SubscribeOptions,
        now: Instant,
    ) -> Result<(), CommandError> {
        self.check_not_closed()?;
        if !self.hooks.subscriptions.speaks() {
            return Err(CommandError::NoSubscriptionCodec);
        }
        let added = self.subscriptions.add(channels, options);
        if self.state == SessionState::Open && !added.is_empty() {
            let out = self.hooks.subscriptions.subscribe(&added);
            self.send_change(out, Purpose::Subscribe(added), now);
        }
        Ok(())
    }

    /// Removes channels from the set; unsubscribes them now when open.
    pub fn unsubscribe(&mut self, channels: &[&str], now: Instant) -> Result<(), CommandError> {
        self.record(now, || Entry::Unsubscribe { channels: channels.iter().map(|c| (*c).to_owned()).collect() });
        self.check_not_closed()?;
        if !self.hooks.subscriptions.speaks() {
            return Err(CommandError::NoSubscriptionCodec);
        }
        let removed = self.subscriptions.remove(channels);
        if self.state == SessionState::Open && !removed.is_empty() {
            let out = self.hooks.subscriptions.unsubscribe(&removed);
            self.send_change(out, Purpose::Unsubscribe(removed), now);
        }
        Ok(())
    }

    /// Reports a break in a channel's numbering, before the message that showed it.
    pub(super) fn report_break(&mut self, broken: &Break) {
        let channel = broken.channel.clone();
        let event = match broken.verdict {
            Verdict::Gap { expected, got } => {
                self.counters.sequence_gaps += 1;
                SessionEvent::SequenceGap { channel, expected, got }
            }
            Verdict::Reset { last, got } => {
                self.counters.sequence_resets += 1;
                SessionEvent::SequenceReset { channel, last, got }
            }
            Verdict::Fine => return,
        };
        self.emit(event);
    }

    /// What the channel's `on_gap` says: nothing more, a resubscribe, or a reconnect.
    pub(super) fn act_on_break(&mut self, broken: Break, now: Instant) {
        match broken.action {
            GapAction::Tell => {}
            GapAction::Resubscribe => {
                let unsubscribe = self.hooks.subscriptions.unsubscribe(&broken.channels);
                self.send_change(unsubscribe, Purpose::Unsubscribe(broken.channels.clone()), now);
                let subscribe = self.hooks.subscriptions.subscribe(&broken.channels);
                // A subscribe the server answers: numbering waits for the answer.
                let answered = subscribe.iter().any(|o| matches!(o, Outbound::Request { .. }));
                self.subscriptions.restart(&broken.channels, !answered);
                self.send_change(subscribe, Purpose::Subscribe(broken.channels), now);
            }
            // After the messages already read: they are delivered, not lost with the link.
            GapAction::Reconnect => self.break_reconnect = self.break_reconnect.take().or(Some(Box::new(broken))),
        }
    }

    /// The reconnect a break asked for, once the messages read with it are out.
    pub(super) fn reconnect_for_break(&mut self, now: Instant) {
        let Some(broken) = self.break_reconnect.take() else { return };
        self.subscriptions.restart(&broken.channels, true);
        if self.conn.is_some() && matches!(self.state, SessionState::Open) {
            let reason = DisconnectReason::SequenceBroken { channel: broken.channel };
            self.disconnect(reason, Some(Decision::ReconnectNow), now);
        }
    }
}
