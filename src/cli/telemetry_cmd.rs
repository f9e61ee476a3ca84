//! `codelens telemetry on|off|status|show|forget`.

use super::*;

pub(crate) fn telemetry_command(action: TelemetryAction, env: &TelemetryEnv) -> anyhow::Result<()> {
    match action {
        TelemetryAction::On | TelemetryAction::Off => {
            let on = matches!(action, TelemetryAction::On);
            let status = telemetry::set_consent(env, on)?;
            println!("telemetry {}", status.summary());
            if status.enabled != on {
                eprintln!(
                    "codelens: note: your choice is stored, but {} decides while it is set",
                    status.decided_by.describe()
                );
            } else if on {
                println!("what is sent: see `codelens telemetry status` and TELEMETRY.md");
            } else {
                println!("nothing is recorded or sent; the unsent buffer was deleted");
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
            match telemetry::session::next_payload(env, &buffer) {
                Some(payload) => println!("{}", serde_json::to_string_pretty(&payload)?),
                None => eprintln!(
                    "codelens: nothing would be sent: {} (only completed UTC days are sent)",
                    match buffer.days.len() {
                        0 => "the buffer is empty".to_string(),
                        n => format!("{n} day(s) buffered, none completed"),
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
