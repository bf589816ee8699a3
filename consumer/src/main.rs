//! The consumer binary: the Lambda function (the `bootstrap` that Terraform deploys).

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (consumer, _sqs) = sfn_mackerel_consumer::startup::consumer_from_env().await?;
    let consumer = &consumer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        sfn_mackerel_consumer::lambda::handle_sqs_event(consumer, event)
            .await
            .map_err(Error::from)
    }))
    .await
}
