//! DPU secrets: issued once, checked, replaced, withdrawn, and what a broker polls.

use crate::stories::dpu;
use roomer_storage::{secrets, Store};

pub async fn dpu_secrets_are_issued_checked_replaced_and_withdrawn(store: &dyn Store) {
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let first = store.issue_dpu_secret(&dpu("283")).await.unwrap();
    assert!(store.check_dpu_secret(&dpu("283"), &first).await.unwrap());
    assert!(!store.check_dpu_secret(&dpu("423"), &first).await.unwrap());
    assert!(!store.check_dpu_secret(&dpu("283"), "guess").await.unwrap());

    // Issuing again replaces the secret: the first one stops working.
    let second = store.issue_dpu_secret(&dpu("283")).await.unwrap();
    assert_ne!(first, second);
    assert!(!store.check_dpu_secret(&dpu("283"), &first).await.unwrap());
    assert!(store.check_dpu_secret(&dpu("283"), &second).await.unwrap());

    let other = store.issue_dpu_secret(&dpu("423")).await.unwrap();
    let hashes = store.dpu_secret_hashes().await.unwrap();
    let ids: Vec<&str> = hashes.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(ids, ["283", "423"]);
    // Only hashes are kept, in Mosquitto's form, and they match the secrets.
    assert!(secrets::verify_secret(&second, &hashes[0].1));
    assert!(secrets::verify_secret(&other, &hashes[1].1));
    assert!(!hashes.iter().any(|(_, h)| h.contains(&second)));

    let changed = store.dpu_secrets_changed(before).await.unwrap();
    let ids: Vec<&str> = changed.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(ids, ["283", "423"], "oldest change first");
    let after_all = changed[1].1 + chrono::TimeDelta::microseconds(1);
    assert!(store
        .dpu_secrets_changed(after_all)
        .await
        .unwrap()
        .is_empty());

    // Withdrawing: the secret stops working, the DPU leaves the password list, and the
    // change is seen by a poll that started after the last one.
    assert!(store.revoke_dpu_secret(&dpu("283")).await.unwrap());
    assert!(
        !store.revoke_dpu_secret(&dpu("283")).await.unwrap(),
        "already"
    );
    assert!(
        !store.revoke_dpu_secret(&dpu("999")).await.unwrap(),
        "never had one"
    );
    assert!(!store.check_dpu_secret(&dpu("283"), &second).await.unwrap());
    let ids: Vec<String> = store
        .dpu_secret_hashes()
        .await
        .unwrap()
        .into_iter()
        .map(|(d, _)| d.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["423"]);
    let changed = store.dpu_secrets_changed(after_all).await.unwrap();
    let ids: Vec<&str> = changed.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(ids, ["283"]);
    assert!(store.check_dpu_secret(&dpu("423"), &other).await.unwrap());
}
