//! `ramtid catalog design`: proposes a catalog of broad codes from a visit log and scores
//! it, with given candidates and a random grouping, on held-out recipients (ramtid-report).

use anyhow::Context as _;
use clap::Subcommand;
use ramtid_core::catalog::Catalog;
use ramtid_core::model::{resolve, Model};
use ramtid_core::visits::{read_visit_log, ReadOptions};
use ramtid_report::catalog_design::{candidate_from_file, design, write, DesignConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Catalogs: designing broad codes (clusters) from the log.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
}

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Propose K broad codes from which codes share visits, slots, categories and context
    /// effects, and report the accuracy each candidate catalog loses on held-out recipients.
    Design {
        /// The model trained on the log in detailed codes (a version folder, a model name
        /// folder or a models root).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        visits: PathBuf,
        /// The detailed catalog of the log (its codes must be the model's).
        #[arg(long)]
        catalog: PathBuf,
        /// How many codes the proposed catalog has (broad codes and codes left alone).
        #[arg(long)]
        clusters: usize,
        #[arg(long)]
        out: PathBuf,
        /// A catalog with [[cluster]] sections to score beside the proposal (repeatable).
        #[arg(long)]
        candidate: Vec<PathBuf>,
        /// Decides the held-out recipients and the random grouping.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Random groupings of the proposal's size scored beside it, for scale.
        #[arg(long, default_value_t = 5)]
        random: usize,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Catalog {
            command:
                CatalogCommand::Design {
                    model,
                    visits,
                    catalog,
                    clusters,
                    out,
                    candidate,
                    seed,
                    random,
                },
        } = self;
        let model = Model::load(&resolve(&model)?)?;
        let detailed = Catalog::load(&catalog)?;
        let codes = |c: &Catalog| {
            c.insatser
                .iter()
                .map(|i| i.code.clone())
                .collect::<Vec<_>>()
        };
        if codes(&detailed) != codes(&model.catalog) {
            anyhow::bail!(
                "--catalog {}: its codes are not the model's ({} codes against {}); give the catalog the model was trained with",
                catalog.display(),
                detailed.insatser.len(),
                model.catalog.insatser.len()
            );
        }
        let candidates = candidate
            .iter()
            .map(|p| candidate_from_file(&model, p).map_err(|e| anyhow::anyhow!("--candidate {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let log = read_visit_log(
            &visits,
            &model.catalog,
            &ReadOptions {
                rules: model.manifest.cleaning.clone(),
                rejects_path: None,
            },
        )?;
        let (d, proposed) = design(
            &model,
            &log,
            candidates,
            &DesignConfig {
                clusters,
                seed,
                random_draws: random,
            },
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        write(&out, &d, &proposed).with_context(|| format!("cannot write {}", out.display()))?;
        for c in &d.candidates {
            eprintln!(
                "{:<28} {:>3} codes  MAPE vs detailed {:>5.1} %  vs performed {:>5.1} % (lost {:+.1} points)",
                c.name,
                c.codes,
                100.0 * c.mape_vs_detailed,
                100.0 * c.mape_vs_performed,
                100.0 * c.accuracy_lost
            );
        }
        eprintln!(
            "random groupings: median MAPE vs detailed {:.1} %",
            100.0 * d.random_median_mape_vs_detailed
        );
        eprintln!(
            "detailed catalog: {} codes, MAPE vs performed {:.1} %; {} held-out recipients; {:.1} s; wrote {}/catalog.toml, design.json, report.html",
            d.detailed_codes,
            100.0 * d.detailed_mape_vs_performed,
            d.recipients_heldout,
            d.seconds,
            out.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
