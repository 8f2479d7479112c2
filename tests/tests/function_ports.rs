//! What a deployed function builds: the AWS adapters its catalogue entry declares, and for
//! every other optional port a stand-in that refuses by name (against moto).

use bazaar_adapters::config::connect_aws;
use bazaar_api::functions::ALL;
use bazaar_api::settings::Settings;
use bazaar_shared::settings::Source;
use bazaar_tests::moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_gets_only_the_ports_it_declares() {
    let endpoint = moto::endpoint();
    let settings = Settings::from_source(&Source::pairs(&[
        ("BAZAAR_BACKEND", "aws"),
        ("BAZAAR_AWS_ENDPOINT_URL", &endpoint),
        ("BAZAAR_QUEUE_PREFIX", "function-ports-"),
    ]))
    .unwrap_or_else(|error| panic!("{error}"));
    let sdk = moto::sdk_config().await;
    let mut checked = 0;
    for function in ALL {
        let connected = connect_aws(&settings.backend, Some(sdk.clone()), function.needs.ports())
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", function.name));
        let ports = &connected.ports;
        // A declared queue goes to SQS (here: no such queue on moto); an undeclared one
        // refuses without a request.
        let sent = ports.queue.send("payments", "{}").await;
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
        checked += 1;
    }
    assert_eq!(checked, ALL.len());
    let reads_only = ALL.iter().filter(|function| !function.needs.queue).count();
    assert!(reads_only > 0, "every function declares the queue");
}
