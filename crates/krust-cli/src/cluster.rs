//! The flags every command that talks to the cluster outside a consumer or
//! a producer shares, `-b` and `-X`, and the admin client they make.
//! Properties are the pool's (`PoolConfig::from_properties`): security,
//! timeouts, `client.id`; an unknown key or a bad value is refused naming
//! both.

use clap::Args;
use krust::admin::Admin;
use krust::net::PoolConfig;

use crate::CliError;
use crate::props::{self, Property};

/// `-b` and `-X` of the admin commands.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Bootstrap broker(s), `host:port[,host:port...]`.
    #[arg(short = 'b', long = "brokers", value_name = "HOST:PORT")]
    pub brokers: String,
    /// A client property by its Kafka name (repeatable), e.g.
    /// `-X security.protocol=SASL_SSL`, `-X request.timeout.ms=5000`.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = props::parse)]
    pub props: Vec<Property>,
}

impl ClusterArgs {
    /// The properties: `bootstrap.servers` from `-b`, then `-X`.
    pub fn properties(&self) -> Vec<(String, String)> {
        props::merge(
            vec![("bootstrap.servers".to_owned(), self.brokers.clone())],
            &self.props,
        )
    }

    /// The pool's settings; a bad `-X` is a usage error naming key and
    /// value.
    pub fn pool_config(&self) -> Result<PoolConfig, CliError> {
        PoolConfig::from_properties(self.properties())
            .map_err(|e| CliError::usage(crate::describe(&e)))
    }

    /// An admin client bootstrapped from the flags.
    pub async fn admin(&self) -> Result<Admin, CliError> {
        let config = self.pool_config()?;
        Admin::connect(config).await.map_err(CliError::from_err)
    }
}
