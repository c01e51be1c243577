//! `beer-meetup-operator`: `run` (the controller, default), `crd` (prints the CRD), `render`
//! (prints the children a CR would get, without a cluster).

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use beer_meetup_operator::metrics::{self, Metrics};
use beer_meetup_operator::{ControllerConfig, crd, render, run_controller_until};
use clap::{Parser, Subcommand};
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{error, info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "beer-meetup-operator",
    version,
    about = "Kubernetes operator for BeerMeetupPlatform resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller (the default).
    Run(RunArgs),
    /// Print the CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would apply for the CRs in a file ("-" for stdin).
    Render {
        /// File with one or more BeerMeetupPlatform documents.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Render as if the cluster had the Prometheus Operator's ServiceMonitor CRD (the
        /// controller looks it up; render cannot).
        #[arg(long)]
        service_monitors: bool,
        /// Namespace of CRs that name none, as `kubectl apply -n` would use (default: `default`);
        /// names and the init Job's hash depend on it.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
}

#[derive(Parser, Debug, Clone)]
struct RunArgs {
    /// Namespace to watch (repeatable); all namespaces when omitted.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Address of the /metrics and /healthz server.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Run without a Lease (only one replica may run then).
    #[arg(long)]
    no_leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "beer-meetup-operator")]
    lease_name: String,
    /// Namespace of the Lease; the pod's namespace by default.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Identity in the Lease and in Events; the pod name by default.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Platforms reconciled concurrently.
    #[arg(long, default_value_t = 8)]
    concurrency: u16,
    /// Ingress-controller image a platform may run besides the pinned default (repeatable or
    /// comma-separated; an entry ending in `*` is a prefix). A platform asking for another image
    /// is reported Degraded (ImageNotAllowed).
    #[arg(
        long = "allowed-ingress-controller-image",
        env = "ALLOWED_INGRESS_CONTROLLER_IMAGES",
        value_delimiter = ','
    )]
    allowed_ingress_controller_images: Vec<String>,
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // No subcommand means `run` with its defaults and environment.
    let command = match cli.command {
        Some(command) => command,
        None => Command::Run(RunArgs::parse_from(["beer-meetup-operator"])),
    };
    match command {
        Command::Crd => {
            print!("{}", crd::crd_yaml()?);
            Ok(())
        }
        Command::Render {
            file,
            service_monitors,
            namespace,
        } => {
            let input = if file.as_os_str() == "-" {
                let mut buffer = String::new();
                std::io::stdin().read_to_string(&mut buffer)?;
                buffer
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            print!(
                "{}",
                render::render_with(
                    &input,
                    render::RenderOptions {
                        service_monitors,
                        namespace,
                    }
                )?
            );
            Ok(())
        }
        Command::Run(args) => {
            init_logging();
            run(args).await
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let metrics = Arc::new(Metrics::new());
    let server = tokio::spawn(metrics::serve(args.metrics_addr, metrics.clone()));
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("beer-meetup-operator-{}", std::process::id()));
    let config = ControllerConfig {
        namespaces: args.namespaces.clone(),
        concurrency: args.concurrency,
        instance: Some(identity.clone()),
        allowed_ingress_images: beer_meetup_operator::images::ImageAllowList::new(
            args.allowed_ingress_controller_images.clone(),
        ),
        ..ControllerConfig::default()
    };
    info!(
        namespaces = ?args.namespaces,
        leader_election = !args.no_leader_election,
        version = env!("CARGO_PKG_VERSION"),
        "starting"
    );

    // SIGTERM/SIGINT flips this once; every waiter below sees it.
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down: finishing reconciliations in flight");
        let _ = stop_sender.send(true);
    });
    let stopping = move || {
        let mut receiver = stop_receiver.clone();
        async move {
            // An error means the sender is gone, which only happens at exit: stop as well.
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    };

    let controller = async {
        if args.no_leader_election {
            return run_controller_until(client.clone(), config, metrics.clone(), stopping()).await;
        }
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&args.lease_namespace)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .context("creating the leader-election Lease manager")?;
        let (mut leader, lease_task) = manager.watch().await;
        info!(lease = %args.lease_name, namespace = %args.lease_namespace, "waiting for leadership");
        let became_leader = tokio::select! {
            led = async {
                while !*leader.borrow_and_update() {
                    leader.changed().await?;
                }
                anyhow::Ok(())
            } => {
                led.context("the leader-election task stopped")?;
                true
            }
            _ = stopping() => false,
        };
        let result = if became_leader {
            info!("acquired leadership");
            tokio::select! {
                result = run_controller_until(client.clone(), config, metrics.clone(), stopping()) => result,
                // Losing the Lease means another replica may already be reconciling: stop at
                // once (the pod restarts and queues up for the Lease again), as
                // controller-runtime does.
                _ = async {
                    loop {
                        if leader.changed().await.is_err() || !*leader.borrow() {
                            break;
                        }
                    }
                } => Err(anyhow::anyhow!("lost leadership")),
            }
        } else {
            Ok(())
        };
        // Dropping the receiver makes the lease task release the Lease (holder cleared) and end,
        // so the next replica takes over at once instead of after the Lease expires.
        drop(leader);
        match tokio::time::timeout(LEASE_RELEASE_TIMEOUT, lease_task).await {
            Ok(Ok(Ok(_))) => info!("released the leader-election Lease"),
            Ok(Ok(Err(error))) => {
                warn!(%error, "could not release the Lease; it expires by itself")
            }
            Ok(Err(error)) => warn!(%error, "the lease task failed"),
            Err(_) => warn!("releasing the Lease timed out; it expires by itself"),
        }
        result
    };

    tokio::select! {
        result = controller => {
            if let Err(error) = &result {
                error!(%error, "controller stopped");
            }
            result
        }
        served = server => {
            match served {
                Ok(Ok(())) => bail!("the metrics server stopped"),
                Ok(Err(error)) => Err(error).context("serving /metrics and /healthz"),
                Err(error) => Err(error).context("the metrics server task"),
            }
        }
    }
}

/// How long shutdown waits for the Lease to be released.
const LEASE_RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
