using ActorSim.Actors;
using ActorSim.Actors.Scenarios;
using ActorSim.Domain.Kernel;
using ActorSim.Persistence.EventLog;
using Akka.Actor;

namespace ActorSim.Host.Commands;

/// <summary><c>actorsim scenario FILE...</c>: runs each file through the actors and the journal (the
/// Marten journal on the database <see cref="Database.Setting"/> names, or in memory with --in-memory);
/// one line per expectation; exit 0 if all pass, 1 if any fails, 2 if a file is invalid (file:line:
/// field: why), 3 if the database cannot be reached. <c>--junit FILE</c> also writes the results as JUnit
/// XML (<see cref="JUnitReport"/>).</summary>
public static class ScenarioCommand
{
    public static async Task<int> Execute(string[] args)
    {
        var deterministic = false;
        var inMemory = false;
        string? db = null;
        string? junit = null;
        var files = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--deterministic": deterministic = true; break;
                case "--in-memory": inMemory = true; break;
                case "--db" when i + 1 < args.Length: db = args[++i]; break;
                case "--junit" when i + 1 < args.Length: junit = args[++i]; break;
                case "-" when files.Contains(Args.InputFile("-")):
                    Console.Error.WriteLine("actorsim scenario: - is given twice: the standard input is read once");
                    return 2;
                case "-": files.Add(Args.InputFile("-")); break; // the standard input, as for replay --file and import
                case var a when a.StartsWith('-'):
                    Console.Error.WriteLine($"actorsim scenario: unknown option '{a}' (usage: {Usage})");
                    return 2;
                default: files.Add(args[i]); break;
            }
        }
        if (files.Count == 0)
        {
            Console.Error.WriteLine($"actorsim scenario: usage: {Usage}");
            return 2;
        }
        if (inMemory && db is not null)
        {
            Console.Error.WriteLine("actorsim scenario: give --db or --in-memory, not both");
            return 2;
        }
        JUnitReport? report = null;
        // Ctrl-C / SIGTERM end a scenario at once: no empty report left (it is created before anything
        // runs), listened for before it exists.
        using var interrupts = Interrupts.CleanUpOn(() => report?.Abandon());
        try
        {
            if (junit is not null)
            {
                junit = Args.CheckOutputFile("scenario", "--junit", junit);
                // The report is created before the scenarios are read: it replaced the one named twice.
                foreach (var f in files) Args.CheckNotSameFile("scenario", "--junit", junit, "the scenario file", f);
                Args.KeepStandardOutputFor(junit);
                report = JUnitReport.Create(junit);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return CannotWrite(e);
        }
        using var ownReport = report;
        int exit;
        try
        {
            exit = await Run(files, deterministic, inMemory, db, report);
        }
        catch
        {
            report?.Discard(); // an infrastructure failure (exit 3): no report rather than half of one
            throw;
        }
        if (report is null) return exit;
        if (exit == 3) { report.Discard(); return exit; } // the database did not let the scenarios start
        try
        {
            report.Write();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return CannotWrite(e);
        }
        return exit;

        int CannotWrite(Exception e)
        {
            // `scenario --junit /dev/stdout ... | head`: the reader has had what it wanted. Ended without a
            // word, as a command that SIGPIPE ends is (128 + 13); it said "cannot write: Broken pipe", exit 2.
            if (SpecialFiles.IsBrokenPipe(e)) return 141;
            Console.Error.WriteLine($"actorsim scenario: --junit {junit}: cannot write: {e.Message}");
            return 2;
        }
    }

    private const string Usage = "actorsim scenario [--deterministic] [--db CONN | --in-memory] [--junit FILE] FILE...";

    private static async Task<int> Run(List<string> files, bool deterministic, bool inMemory, string? db, JUnitReport? report)
    {
        var setting = inMemory ? null : Database.Required("scenario", db, inMemoryToo: true);
        if (setting is not null && !await Database.ReachableAsync(setting)) return 3;
        var cs = setting?.ConnectionString;
        var (outageLimit, _) = Database.OutageLimit(null, "scenario");
        // Parse every file first: an invalid file runs nothing.
        var scenarios = new List<Scenario>();
        foreach (var f in files)
        {
            try
            {
                scenarios.Add(ScenarioParser.ParseFile(f));
            }
            catch (ScenarioFormatException e)
            {
                Console.Error.WriteLine($"actorsim scenario: {Printable.Of(e.Message)}");
                report?.Invalid(f, e.Message);
                return 2;
            }
        }
        var failed = 0;
        foreach (var s in scenarios)
        {
            var runId = Database.NewRunId(s.Name);
            Console.WriteLine($"scenario {Printable.Of(s.Name)} ({Printable.Of(s.File)}, kernel {s.Policy}{(s.CpuMte ? " mte=1" : "")})");
            Console.WriteLine($"run: {runId} ({(cs is null ? "in-memory journal" : $"journal {Persistence.MartenStores.Describe(cs)}")}{(deterministic ? ", deterministic" : "")})");
            var info = new Persistence.ReadSide.RunInfo
            {
                Id = runId, Seed = (long)(s.Seed ?? 0), Kernel = s.Policy.RuleSet.Label(), Fwb = s.Policy.Cpu.Fwb, Dic = s.Policy.Cpu.Dic, Mte = s.CpuMte,
                WordSize = (int)s.Policy.WordSize, Scenario = s.File, Commit = BuildInfo.Commit, CommitModified = BuildInfo.Modified, Started = DateTimeOffset.UtcNow,
            };
            // Held while the scenario writes its run (RunLock): `runs` shows it running, `delete` refuses it.
            await using var runLock = cs is null ? null : await Persistence.EventLog.RunLock.TryAcquireAsync(cs, runId);
            if (cs is not null) await Database.RecordRunAsync(cs, info);
            // Taken again if the database drops it (a restart the scenario rides out), as run's is.
            runLock?.Keep(async ct => await Persistence.EventLog.RunLog.InfoAsync(Persistence.MartenStores.Get(cs!), runId, ct) is not null, TimeSpan.FromSeconds(1));
            var lockLost = runLock?.Lost ?? new TaskCompletionSource<string>().Task;
            // Each scenario in its own actor system, as `run`'s under Akka.Hosting (HostedActorSystem).
            ScenarioRunResult? r = null;
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            await using (var hosted = await HostedActorSystem.StartAsync("actorsim", SimHost.BaseConfig(deterministic), cs, outageLimit))
            {
                // The database lost for longer than the outage limit stops the scenario at once, as it
                // stops `run` (exit 3): before, its steps waited for their asks' timeout, 30 s, and the
                // AskTimeoutException ended the process unhandled (exit 134).
                var unavailable = new TaskCompletionSource<Persistence.Journal.JournalUnavailable>(TaskCreationOptions.RunContinuationsAsynchronously);
                if (cs is not null) hosted.System.ActorOf(Props.Create(() => new OutageWatch(unavailable, outageLimit, new DatabaseState("up"))), "outage-watch");
                // Its asks wait past the outage limit, as run's do (they gave up at 30 s, inside the limit).
                var running = ScenarioRunner.RunRecordedAsync(hosted.System, s, runId, line => Console.WriteLine($"  {Printable.Of(line.ToString())}"),
                    new SimHostOptions(AskTimeout: OutageWatch.AskTimeout(outageLimit)));
                string? stopped = null;
                try
                {
                    if (await Task.WhenAny(running, unavailable.Task, lockLost) == running) r = await running;
                    else stopped = await OutageWatch.Stopping(lockLost, unavailable.Task, cs!, outageLimit);
                }
                catch (AskTimeoutException)
                {
                    stopped = OutageWatch.StoppedAnswering(cs is not null);
                }
                if (stopped is not null) Console.Error.WriteLine($"actorsim scenario: {stopped}");
            }
            if (r is null) return 3; // the run's record stays without an end: `runs` shows it stopped
            report?.Ran(s, runId, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, r.Results);
            var bad = r.Results.Count(x => !x.Passed);
            Console.WriteLine($"  {(bad == 0 ? "passed" : "FAILED")}: {r.Results.Count - bad} of {r.Results.Count} expectations, {r.Events.Count} events");
            if (bad > 0) failed++;
            // `runs` shows it ended; a database away as it ends holds up only this (as run's end).
            if (cs is not null && await RunCommand.RecordEnd(cs, info, lockLost, outageLimit, "scenario") is { } notRecorded) return notRecorded;
        }
        Console.WriteLine($"{scenarios.Count - failed} scenarios passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }
}
