//! What a deployed function builds (against moto): the AWS adapters its catalogue entry
//! declares, a stand-in that refuses by name for every other optional port, and the signing
//! secret only when it declares tokens.

use bazaar_api::functions::ALL;
use bazaar_api::settings::{Settings, SettingsError};
use bazaar_shared::settings::Source;
use bazaar_tests::moto;

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let endpoint = moto::endpoint();
    let mut all = vec![
        ("BAZAAR_BACKEND", "aws"),
        ("BAZAAR_AWS_ENDPOINT_URL", endpoint.as_str()),
        ("BAZAAR_QUEUE_PREFIX", "function-ports-"),
    ];
    all.extend_from_slice(pairs);
    Settings::from_source(&Source::pairs(&all)).expect("read the function settings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_gets_only_the_ports_it_declares() {
    let sdk = moto::sdk_config().await;
    let with_secret = settings(&[(
        "BAZAAR_JWT_SECRET",
        "test-only:Pk4#Wd8$Rn2!Hc6&Zy1*Tb5@Mq9^Lf3",
    )]);
    for function in ALL {
        let app = (function.needs.start())(with_secret.clone(), Some(sdk.clone()))
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", function.name));
        let ports = app.ports();
        // A declared queue goes to SQS (here: no such queue on moto); an undeclared one
        // refuses without a request.
        let sent = ports
            .queue
            .send("payments", "{}", &Default::default())
            .await;
        let queue_refused = sent.as_ref().is_err_and(|error| {
            error
                .to_string()
                .contains("does not declare the queue port")
        });
        assert_eq!(
            queue_refused, !function.needs.queue,
            "{}: {sent:?}",
            function.name
        );
        let read = ports.blobs.get("imports/none.csv").await;
        let blobs_refused = read.as_ref().is_err_and(|error| {
            error
                .to_string()
                .contains("does not declare the blobs port")
        });
        assert_eq!(blobs_refused, !function.needs.blobs, "{}", function.name);
    }
    assert!(
        ALL.iter().any(|function| !function.needs.queue),
        "every function declares the queue"
    );
}

/// On AWS without a configured secret, a function that declares tokens refuses to start and
/// one that does not starts without looking for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_functions_with_tokens_need_the_signing_secret() {
    let sdk = moto::sdk_config().await;
    let without_secret = settings(&[]);
    for function in ALL {
        let started = (function.needs.start())(without_secret.clone(), Some(sdk.clone())).await;
        if function.needs.tokens {
            assert!(
                matches!(started, Err(SettingsError::NoSigningSecret)),
                "{} started without a secret",
                function.name
            );
        } else {
            assert!(started.is_ok(), "{}: {:?}", function.name, started.err());
        }
    }
}
