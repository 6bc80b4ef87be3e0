using ActorSim.Domain.Kernel;
using ActorSim.Host.Commands;
using ActorSim.Persistence;

namespace ActorSim.Host;

/// <summary>The <c>actorsim</c> command. Exit codes: 0 success, 1 a check failed, 2 bad input or
/// usage, 3 infrastructure (database unreachable).</summary>
public static class Program
{
    private const string Usage = """
        usage: actorsim <command> [options]
          run       [--duration 30s | --rounds N] [--seed N] [--kernel 6.8|6.9|6.17] [--no-fwb] [--no-dic] [--vms N] [--vcpus N]
                    [--deterministic] [--db CONN | --in-memory] [--snapshot-every N] [--run-id ID] [--export FILE]
                    [--outage-limit 60s] [--resume ID] [--metrics FILE]
                    a seeded long-running simulation through the actors, every event persisted
          run       --scenario FILE [--deterministic] [--db CONN | --in-memory] [--junit FILE]    the same as scenario FILE
          scenario  [--deterministic] [--db CONN | --in-memory] [--junit FILE] FILE...
                    run scenario files; exit 0 all pass, 1 a check failed, 2 bad file, 3 database unreachable or lost
          runs      [--json] [--db CONN]                      list recorded runs
          replay    (--run ID | --file FILE) [--verify] [--kernel K] [--fwb|--no-fwb] [--dic|--no-dic] [--json]
                    re-derive every decision; with --kernel/--fwb/--dic re-decide and report what changes
          summary   --run ID [--json]                         a run's events, decisions by result and memory type, invariants
          export    --run ID -o FILE                          write a run as JSON Lines
          import    FILE [--as NEW_ID]                        read a JSON Lines event log into the database
          delete    (RUN... | --older-than 7d) [--dry-run] [--db CONN]
                    remove runs whole (events, snapshots, read side, run record), in one transaction
          explain   (--run ID | --file FILE) --vm NAME --gpa ADDR [--json]
                    why a guest page has its memory type
          bench     [--quick] [--json] [--reps N] [--vms N] [--vcpus N] [--only SECTION,...]
                    the fault path side by side (see docs/BENCHMARKS.md)
          kernels   [--no-fwb] [--no-dic]                     the modelled rule sets, and what each decides for each kind of page
          version                                             the build (its commit), and the database the commands use
        the database is --db, else ACTORSIM_DB, else ConnectionStrings:ActorSim in ./appsettings.json, else in
        the appsettings.json beside actorsim.dll: the local cluster scripts/pg.sh starts;
        a FILE given as - is the standard output (-o, --export, --metrics, --junit) or input (--file, import, scenario)
        """;

    public static int Main(string[] args)
    {
        try
        {
            return Dispatch(args).GetAwaiter().GetResult();
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"actorsim {e.Message}");
            return 2;
        }
        catch (Actors.Scenarios.ScenarioFormatException e)
        {
            Console.Error.WriteLine($"actorsim: {e.Message}");
            return 2;
        }
        catch (Persistence.EventLog.StoredEventException e)
        {
            Console.Error.WriteLine($"actorsim: a stored event cannot be read: {e.Message}");
            return 2;
        }
        catch (Akka.Actor.AskTimeoutException)
        {
            // An actor that did not answer: in these commands, one the journal failed (a recovery or a
            // write the database refused past the outage limit) — before, the process ended unhandled
            // (exit 134) when the database went away while `scenario` or `run` started their actors.
            Console.Error.WriteLine("actorsim: the simulation stopped answering (a journal's recovery or write failed: see the log above)");
            return 3;
        }
        catch (Exception e) when (NpgsqlCause(e) is { } cause)
        {
            // An Npgsql error, or one under Marten's wrappers of a failed command or schema change
            // (MartenCommandException, MartenSchemaException: their messages are the SQL).
            // Named as the command and the database it used (host:port/db and where that came from), as
            // an unreachable database is: a connection lost mid-command said only "database error".
            Console.Error.WriteLine($"actorsim {(args.Length > 0 ? args[0] : "")}: database{DatabaseOf(args)}: {cause.GetType().Name}: {cause.Message.Split('\n')[0]}");
            return 3;
        }
    }

    /// <summary>" host:port/db (source)" of the database the command used, or "" if it cannot be told.</summary>
    private static string DatabaseOf(string[] args)
    {
        try
        {
            var option = Array.IndexOf(args, "--db") is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
            return Database.Setting(option) is { } s ? $" {MartenStores.Describe(s.ConnectionString)} ({s.Source})" : "";
        }
        catch (Exception)
        {
            return ""; // a settings file that does not read: the command would have said so first
        }
    }

    private static Npgsql.NpgsqlException? NpgsqlCause(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is Npgsql.NpgsqlException n) return n;
        return null;
    }

    private static async Task<int> Dispatch(string[] args)
    {
        var cmd = args.Length == 0 ? "--help" : args[0];
        var rest = args.Length == 0 ? [] : args[1..];
        if (rest.Contains("--help") || rest.Contains("-h")) cmd = "--help";
        switch (cmd)
        {
            case "--help" or "-h" or "help":
                Console.WriteLine(Usage);
                return 0;
            case "version" or "--version":
                if (rest.Length > 0) throw new UsageException($"version: unexpected '{rest[0]}'");
                Console.WriteLine($"actorsim {BuildInfo.Version} ({(BuildInfo.Commit is { } commit ? $"commit {BuildInfo.Named(commit, BuildInfo.Modified)}" : "commit unknown: built outside a git checkout")})");
                // Which database the commands would use, and where that came from (never the password).
                Console.WriteLine(Database.Setting(null) is { } db
                    ? $"database {MartenStores.Describe(db.ConnectionString)} ({db.Source})"
                    : $"database: none (--db, ACTORSIM_DB or {Database.SettingsKey} in {Database.SettingsFile})");
                // How long `run` rides out a database outage, and where that came from.
                var (limit, limitSource) = Database.OutageLimit(null, "version");
                Console.WriteLine($"outage limit {limit.TotalSeconds:0.###}s ({limitSource})");
                return 0;
            case "kernels": return KernelsCommand.Execute(rest);
            case "run": return await RunCommand.Execute(rest);
            case "scenario": return await ScenarioCommand.Execute(rest);
            case "runs": return await DataCommands.Runs(rest);
            case "summary": return await DataCommands.Summary(rest);
            case "export": return await DataCommands.Export(rest);
            case "import": return await DataCommands.Import(rest);
            case "delete": return await DataCommands.Delete(rest);
            case "replay": return await DataCommands.Replay(rest);
            case "explain": return await ExplainCommand.Execute(rest);
            case "bench": return await BenchCommand.Execute(rest);
            default:
                Console.Error.WriteLine($"actorsim: unknown command '{cmd}' (try --help)");
                return 2;
        }
    }
}
