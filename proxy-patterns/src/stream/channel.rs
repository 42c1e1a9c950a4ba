//! An in-process broker over `crossbeam` channels (fan-out per topic).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use parking_lot::Mutex;
use proxy_core::Result;

use super::{Publisher, Subscriber};

type Topics = Arc<Mutex<HashMap<String, Vec<Sender<Vec<u8>>>>>>;

/// Topics and their subscribers' channels. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ChannelBroker {
    topics: Topics,
}

impl ChannelBroker {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// A publisher: every message goes to every current subscriber of its topic.
    pub fn publisher(&self) -> ChannelPublisher {
        ChannelPublisher {
            topics: self.topics.clone(),
        }
    }

    /// A subscriber of `topics` (messages published from now on).
    pub fn subscribe(&self, topics: &[&str]) -> ChannelSubscriber {
        let (tx, rx) = unbounded();
        let mut map = self.topics.lock();
        for t in topics {
            map.entry(t.to_string()).or_default().push(tx.clone());
        }
        ChannelSubscriber { rx }
    }
}

/// Publishes to a [`ChannelBroker`].
#[derive(Debug)]
pub struct ChannelPublisher {
    topics: Topics,
}

impl Publisher for ChannelPublisher {
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()> {
        let mut map = self.topics.lock();
        if let Some(subs) = map.get_mut(topic) {
            // Subscribers that went away are forgotten.
            subs.retain(|s| s.send(message.to_vec()).is_ok());
        }
        Ok(())
    }
}

/// Receives from a [`ChannelBroker`].
#[derive(Debug)]
pub struct ChannelSubscriber {
    rx: Receiver<Vec<u8>>,
}

impl Subscriber for ChannelSubscriber {
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        match timeout {
            None => Ok(self.rx.recv().ok()),
            Some(t) => match self.rx.recv_timeout(t) {
                Ok(m) => Ok(Some(m)),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => Ok(None),
            },
        }
    }
}
