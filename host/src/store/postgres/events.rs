//! `LISTEN` on the replicas' channel: queued and finished operations of
//! every replica, as [`StoreEvent`]s.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

use super::tx::EVENTS_CHANNEL;
use crate::store::StoreEvent;

/// Reads a notification's payload.
fn event(payload: &str) -> StoreEvent {
    match payload.strip_prefix("finished:") {
        Some(id) => StoreEvent::Finished(id.to_string()),
        None => StoreEvent::Queued,
    }
}

/// Listens until the task is aborted, reconnecting (every second at most)
/// whenever the connection drops; after each (re)connection it sends
/// [`StoreEvent::Resync`], since notifications sent meanwhile are lost.
pub(super) async fn listen(config: tokio_postgres::Config, events: broadcast::Sender<StoreEvent>) {
    let mut down_since_logged = false;
    loop {
        match listen_once(&config, &events).await {
            Ok(()) => tracing::warn!("the database closed the event connection; reconnecting"),
            Err(e) if !down_since_logged => {
                tracing::warn!(error = %e, "cannot listen for other replicas' events; retrying");
                down_since_logged = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    events: &broadcast::Sender<StoreEvent>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection yields the notifications and must be polled for the
    // client's own queries to progress.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the event connection failed");
                    return;
                }
            }
        }
    });
    let listening = client
        .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}"))
        .await;
    if let Err(e) = listening {
        driver.abort();
        return Err(e);
    }
    let _ = events.send(StoreEvent::Resync);
    while let Some(payload) = rx.recv().await {
        // No receiver is fine: nobody is waiting right now.
        let _ = events.send(event(&payload));
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_become_events() {
        assert_eq!(event("queued"), StoreEvent::Queued);
        assert_eq!(event("finished:op-1"), StoreEvent::Finished("op-1".into()));
    }
}
