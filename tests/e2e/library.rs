//! The node as a library: started in this process on a listener the test bound, played on through
//! warren-client, and drained by the future the test gave it.

use std::time::Duration;

use warren_client::{Push, Request, connect};

use crate::common::{SECRET, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_in_process_serves_its_listener_and_drains_on_its_shutdown_future() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let env = [
        ("WARREN_NODE__ID", "lib1"),
        ("WARREN_AUTH__JWT_SECRET", SECRET),
        ("WARREN_CLUSTER__LISTEN", "127.0.0.1:0"),
        ("WARREN_DRAIN__NOTICE_MS", "0"),
        ("WARREN_LOG__LEVEL", "error"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let node = warren::Node::configure_with(None, env)
        .unwrap()
        .with_games(warren::game::GameRegistry::builtin());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = node.spawn(listener, async move {
        let _ = stopped.await;
    });

    // It serves the listener it was given: a player plays there.
    let url = format!("ws://{addr}");
    let (client, mut pushes) = connect(&url, &token("embedded", &[]), None).await.unwrap();
    assert_eq!(client.welcome().node.as_str(), "lib1");
    let room = client
        .create_room("dice", Default::default())
        .await
        .unwrap();
    assert!(room.as_str().starts_with("lib1."), "{room}");
    client.request(Request::Ready).await.unwrap();

    // The shutdown future drains it: the player is told to go elsewhere (4001), and the node
    // reports a drain.
    stop.send(()).unwrap();
    let code = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match pushes.next().await {
                Some(Push::Closed { code, .. }) => return code,
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .expect("the drain closed the connection");
    assert_eq!(code, Some(4001));
    let outcome = tokio::task::spawn_blocking(move || running.join().unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.unwrap(), warren::Stopped::Drained);
}
