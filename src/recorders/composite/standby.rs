//! A display and a browser started ahead of the next composite recording, so that it starts
//! without waiting for them (0.2 to 0.7 s). The browser has no window until a recording
//! takes it, with its display: it then owns both. The recording that took them starts the
//! next pair once its own start is over ([`Standby::refill`]), at its frame size.

use std::sync::{Arc, Mutex, PoisonError};

use tracing::warn;

use crate::browser::{Chromium, Display, Surface};

/// The display and browser standing by.
pub struct Standby {
    slot: Mutex<Slot>,
}

enum Slot {
    Empty,
    Starting,
    Ready {
        size: (u32, u32),
        display: Display,
        browser: Box<Chromium>,
    },
}

impl Standby {
    /// A standby whose first pair starts now, for frames of `size`.
    pub fn start(size: (u32, u32)) -> Arc<Self> {
        let standby = Arc::new(Self {
            slot: Mutex::new(Slot::Empty),
        });
        standby.refill(size);
        standby
    }

    /// The display and browser for frames of `size`, if a pair stands ready and its
    /// browser runs (a pair of another size ends here).
    pub fn take(&self, size: (u32, u32)) -> Option<(Display, Chromium)> {
        let taken = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            match std::mem::replace(&mut *slot, Slot::Empty) {
                Slot::Ready {
                    size: ready,
                    display,
                    browser,
                } if ready == size => Some((display, *browser)),
                Slot::Starting => {
                    *slot = Slot::Starting;
                    None
                }
                // A pair of another size ends here.
                _ => None,
            }
        };
        taken.and_then(|(display, mut browser)| browser.running().then_some((display, browser)))
    }

    /// Starts a pair for `size` unless one is starting or ready.
    pub fn refill(self: &Arc<Self>, size: (u32, u32)) {
        {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if !matches!(*slot, Slot::Empty) {
                return;
            }
            *slot = Slot::Starting;
        }
        let standby = Arc::clone(self);
        tokio::spawn(async move {
            let started = async {
                let display = tokio::task::spawn_blocking(move || Display::start(size))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let browser = Chromium::launch(size, Surface::Waiting(&display))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((display, browser))
            };
            let next = match started.await {
                Ok((display, browser)) => Slot::Ready {
                    size,
                    display,
                    browser: Box::new(browser),
                },
                Err(e) => {
                    warn!(error = %e, "no browser stands by for the next composite recording");
                    Slot::Empty
                }
            };
            *standby.slot.lock().unwrap_or_else(PoisonError::into_inner) = next;
        });
    }
}
