//! `PhoneBuilder::config_file`: the accounts of a config file belong to the phone, each
//! registering with its registrars (here one that is not there: its REGISTER fails on the
//! ICMP error at once, and the account says so, by its name and the registrar tried).

use std::time::Duration;

use tincan::config::Config;
use tincan::phone::driver::Phone;
use tincan::phone::{AccountEvent, PhoneEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_of_a_config_file_register() {
    let dir = std::env::temp_dir().join(format!("tincan-config-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A port nobody listens on.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let registrar = closed.local_addr().unwrap();
    drop(closed);
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[[account]]\nname = \"work\"\naor = \"sip:alice@example.test\"\n\
             password = \"secret\"\ntransport = \"udp\"\nregistrars = [\"sip:{registrar}\"]\n\
             outbound = false\n\n[network]\nbind = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path)).expect("the config loads");
    let mut phone = Phone::builder()
        .config_file(&config)
        .expect("the password is readable")
        .start()
        .await
        .expect("the phone starts");
    assert_eq!(phone.accounts().len(), 1);
    let failed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match phone.next_event().await {
                Some(PhoneEvent::Account {
                    event: AccountEvent::Failed { attempt, .. },
                    ..
                }) => return attempt,
                Some(_) => continue,
                None => panic!("the phone stopped"),
            }
        }
    })
    .await
    .expect("the registration fails in time");
    assert_eq!(failed.target.addr, registrar);
    phone.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
