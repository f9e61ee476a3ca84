//! `codelens telemetry on|off|status|show|forget`.

use super::*;

pub(crate) fn telemetry_command(action: TelemetryAction, env: &TelemetryEnv) -> anyhow::Result<()> {
    match action {
        TelemetryAction::On | TelemetryAction::Off => {
            let on = matches!(action, TelemetryAction::On);
            let was_on = telemetry::status(env).enabled;
            let status = telemetry::set_consent(env, on)?;
            println!("telemetry {}", status.summary());
            if status.decided_by.is_env() {
                // Whichever way the user chose, the environment still decides; say so
                // for `off` too (DO_NOT_TRACK=1 keeps it off, CODELENS_TELEMETRY=1 on).
                eprintln!(
                    "codelens: note: your choice ({}) is stored, but {} in the environment still decides while it is set: telemetry is {}",
                    if on { "on" } else { "off" },
                    status.decided_by.describe(),
                    if status.enabled { "on" } else { "off" }
                );
            } else if on {
                println!("what is sent: see `codelens telemetry status` and TELEMETRY.md");
            } else {
                println!("nothing is recorded or sent; the unsent buffer was deleted");
            }
            // The endpoint is used from now on: a bad one is worth saying (main warns
            // only when telemetry was already on).
            if status.enabled
                && !was_on
                && let Some(problem) = env.url_problem()
            {
                eprintln!("codelens: warning: {problem}");
            }
            Ok(())
        }
        TelemetryAction::Status { json } => {
            let status = telemetry::status(env);
            if json {
                println!("{}", serde_json::to_string_pretty(&status.to_json())?);
                return Ok(());
            }
            println!("telemetry   {}", if status.enabled { "on" } else { "off" });
            println!("decided by  {}", status.decided_by.describe());
            println!(
                "machine id  {}",
                status.machine_id.as_deref().unwrap_or("none")
            );
            println!(
                "buffer      {} ({} bytes)",
                status.buffer_path.display(),
                status.buffer_bytes
            );
            println!(
                "pending     {}",
                if status.pending_days.is_empty() {
                    "no days".to_string()
                } else {
                    status.pending_days.join(", ")
                }
            );
            if status.rejected_days > 0 {
                println!(
                    "rejected    {} day(s) refused by the server and dropped",
                    status.rejected_days
                );
            }
            println!("endpoint    {}", env.url);
            println!("collected:");
            for line in telemetry::COLLECTED {
                println!("  - {line}");
            }
            println!("never collected: {}", telemetry::NEVER_COLLECTED.join(", "));
            Ok(())
        }
        TelemetryAction::Show => {
            let buffer = telemetry::buffer::read(env);
            match telemetry::session::preview(env, &buffer) {
                Some(preview) => println!("{}", serde_json::to_string_pretty(&preview)?),
                None => eprintln!(
                    "codelens: nothing would be sent: {}",
                    match buffer.days.len() {
                        0 => "nothing is recorded".to_string(),
                        n => format!(
                            "{n} day(s) buffered, none sendable (before the opt-in day, or no machine id)"
                        ),
                    }
                ),
            }
            Ok(())
        }
        TelemetryAction::Forget => {
            let id = telemetry::forget_local(env)?;
            let Some(id) = id else {
                println!("no machine id: nothing was sent under one; telemetry is off");
                return Ok(());
            };
            println!("deleted machine id {id} and the local buffer; telemetry is off");
            let url = telemetry::session::deletion_url(&env.url, &id);
            if env.debug {
                eprintln!("codelens: telemetry (debug, not sent): DELETE {url}");
                return Ok(());
            }
            match telemetry::session::request_deletion(env, &id) {
                Ok(()) => {
                    println!("the server deleted the data sent under that id");
                    Ok(())
                }
                Err(error) => anyhow::bail!(
                    "could not ask the server to delete the data of {id} ({error}); retry with: curl -X DELETE {url}"
                ),
            }
        }
    }
}
