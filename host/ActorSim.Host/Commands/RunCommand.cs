using System.Diagnostics;
using System.Runtime.InteropServices;
using ActorSim.Actors;
using ActorSim.Actors.Scenarios;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Persistence;
using ActorSim.Persistence.EventLog;
using ActorSim.Persistence.ReadSide;
using Akka.Actor;
using Spectre.Console;

namespace ActorSim.Host.Commands;

/// <summary><c>actorsim run</c>: a long-running simulation. A seeded workload (VMs × vCPUs over
/// vfio-pci GPUs and NICs, a vfio-platform device and RAM, with memory disable/enable and resets) runs
/// through the actors for --duration, every event persisted (Marten when a database is configured).
/// Prints "run: ID" first, a progress line every second, and a summary. Ctrl-C / SIGTERM drain: the
/// round in flight finishes and is persisted before the process exits 0; a second signal stops at once.</summary>
public static class RunCommand
{
    private sealed class Counter : ReceiveActor
    {
        public sealed record Get;
        private long _events;
        public Counter()
        {
            Receive<DomainEventPublished>(_ => _events++);
            Receive<Get>(_ => Sender.Tell(_events));
        }
        protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(DomainEventPublished));
    }

    /// <summary>--export: writes each event to the file as it is published (<see cref="EventLogSink"/>), so
    /// an exported run's memory stays flat however long it runs. Streams lose the run prefix, versions
    /// count per stream, seq is the order of publication; the time is the simulation's when the event was
    /// published (SimClock: virtual in a deterministic run, so it exports the same bytes twice). A write
    /// that fails stops the writing and is reported by <see cref="Finish"/>; the run goes on.</summary>
    private sealed class ExportWriter : ReceiveActor
    {
        public sealed record Ready;
        public sealed record Finish(EventLogHeader Header);
        /// <summary>BrokenPipe: the file is a pipe whose reader has gone (`run --export /dev/stdout | head`).</summary>
        public sealed record Finished(long Events, string? Error, bool BrokenPipe);

        private readonly EventLogSink _sink;
        private readonly Dictionary<string, long> _versions = new(StringComparer.Ordinal);
        private string? _error;
        private bool _brokenPipe;

        public ExportWriter(EventLogSink sink)
        {
            _sink = sink;
            Receive<DomainEventPublished>(p =>
            {
                if (_error is not null) return;
                var stream = p.Stream[(p.Stream.IndexOf('/') + 1)..];
                var version = _versions[stream] = _versions.GetValueOrDefault(stream) + 1;
                try
                {
                    _sink.Append(new RunEvent(_sink.Count + 1, stream, version, p.Event, p.Time));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Failed(e);
                }
            });
            Receive<Ready>(_ => Sender.Tell(new Ready())); // subscribed (PreStart ran before any message)
            ReceiveAsync<Finish>(async f =>
            {
                if (_error is null)
                {
                    try
                    {
                        await _sink.CompleteAsync(f.Header);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        Failed(e);
                    }
                }
                Sender.Tell(new Finished(_sink.Count, _error, _brokenPipe));
                Context.Stop(Self);
            });
        }

        private void Failed(Exception e)
        {
            _error = e.Message;
            _brokenPipe = SpecialFiles.IsBrokenPipe(e);
        }

        protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(DomainEventPublished));
        protected override void PostStop() => _sink.Dispose();
    }

    public static async Task<int> Execute(string[] args)
    {
        var a = Args.Parse("run", args, ["--fwb", "--no-fwb", "--dic", "--no-dic", "--deterministic", "--in-memory"],
            ["--duration", "--seed", "--kernel", "--vms", "--vcpus", "--db", "--scenario", "--snapshot-every", "--resume", "--outage-limit",
             "--rounds", "--run-id", "--export", "--metrics", "--junit"]);
        // --rounds N stops after N rounds instead of a duration (a deterministic run's length must not
        // depend on the wall clock); --export FILE writes the events this process persisted, in order.
        var rounds = a.GetLong("run", "--rounds", long.MaxValue, 0, long.MaxValue);
        var exportFile = a.GetOutputFile("run", "--export");
        var metricsFile = a.GetOutputFile("run", "--metrics"); // JSON Lines, a line a second (RunMetrics)
        if (exportFile is not null && metricsFile is not null) Args.CheckNotSameFile("run", "--metrics", metricsFile, "--export", exportFile);
        Args.KeepStandardOutputFor(exportFile, metricsFile);
        var (outageLimit, _) = Database.OutageLimit(a.Get("--outage-limit"), "run");
        // One limit: rounds, or the clock (the usage's "--duration 30s | --rounds N").
        if (a.Has("--rounds") && a.Has("--duration")) throw new UsageException("run: give --duration or --rounds, not both");
        var duration = a.GetDuration("run", "--duration", TimeSpan.FromSeconds(30));
        var seed = (int)a.GetLong("run", "--seed", 1, int.MinValue, int.MaxValue);
        var kernelLabel = a.Get("--kernel") ?? "6.9";
        if (!RuleSets.TryParse(kernelLabel, out var rules)) throw new UsageException($"run: --kernel '{kernelLabel}' is not 6.8, 6.9 or 6.17");
        var policy = new KernelPolicy(rules, new CpuFeatures(!a.Has("--no-fwb"), !a.Has("--no-dic")));
        var vms = (int)a.GetLong("run", "--vms", 2, 1, 64);
        var vcpus = (int)a.GetLong("run", "--vcpus", 4, 1, 64);
        if (a.Positional.Count > 0) throw new UsageException($"run: unexpected '{a.Positional[0]}'");
        if (a.Has("--deterministic") && rounds == long.MaxValue && a.Get("--scenario") is null)
            Console.Error.WriteLine("actorsim run: note: --deterministic without --rounds stops on the clock, so two runs agree only as far as the shorter one went");

        if (a.Get("--scenario") is { } file)
        {
            // The file sets the kernel, CPU, seed, devices, VMs and steps: run's own options would be ignored.
            a.Refuse("run", ["--duration", "--seed", "--kernel", "--vms", "--vcpus", "--fwb", "--no-fwb", "--dic", "--no-dic", "--snapshot-every",
                "--resume", "--outage-limit", "--rounds", "--run-id", "--export", "--metrics"], "--scenario (the scenario file sets what it runs)");
            return await ScenarioCommand.Execute([.. a.Has("--deterministic") ? new[] { "--deterministic" } : [], .. a.Has("--in-memory") ? new[] { "--in-memory" } : [],
                .. a.Get("--db") is { } d ? new[] { "--db", d } : [], .. a.Get("--junit") is { } j ? new[] { "--junit", j } : [], file]);
        }
        if (a.Has("--junit")) throw new UsageException("run: --junit applies to --scenario (a scenario's expectations), not to a seeded run");

        // Ctrl-C / SIGTERM drain from here on: the start and set-up, or the round in flight, finish and
        // are persisted, then the summary (a signal before the loop ran used to end the process, 143).
        // A second signal, or one once the rounds are over, stops at once (the signal's own exit, 130 or
        // 143): a round in flight waits out a database outage up to the outage limit, and the record of the
        // run's end as long again, and before, signals did nothing meanwhile (a minute, twice, by default).
        using var stop = new CancellationTokenSource();
        // On a terminal a live table (Spectre.Console), else a line a second: news goes into the table
        // then (its caption, its database column), as a line written under a live display is drawn over.
        var live = !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") is not { Length: > 0 };
        const string Draining = "stopping: the round in flight is finished and written first (a second Ctrl-C stops at once)";
        var signals = 0;
        Action? abandon = null; // what an exit at once must not leave behind: --export's part file
        bool Drain()
        {
            if (Interlocked.Increment(ref signals) > 1)
            {
                abandon?.Invoke();
                // (Below a live table, on a line of its own.)
                Console.Error.WriteLine($"{(live ? "\n" : "")}actorsim run: stopped at once, without draining or recording the run's end (runs shows it stopped)");
                return false;
            }
            if (!live) Console.WriteLine($"  {Draining}");
            stop.Cancel();
            return true;
        }
        Console.CancelKeyPress += (_, e) => e.Cancel = Drain();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => c.Cancel = Drain());
        // A hang-up (its terminal closed: what a drain prints would have nowhere to go) ends the run at
        // once, 129, left stopped (run --resume continues it) — and its --export part file with it, which
        // it left behind (12 MB after 4 s in memory).
        using var hangUp = Interrupts.CleanUpOn(() => abandon?.Invoke(), PosixSignal.SIGHUP);
        if (a.Has("--in-memory") && a.Has("--db")) throw new UsageException("run: give --db or --in-memory, not both");
        var db = a.Has("--in-memory") ? null : Database.Required("run", a.Get("--db"), inMemoryToo: true);
        if (db is not null && !await Database.ReachableAsync(db)) return 3;
        var cs = db?.ConnectionString;
        var resume = a.Get("--resume");
        RunInfo? previous = null;
        if (resume is not null)
        {
            if (cs is null) throw new UsageException("run: --resume does not apply to --in-memory (a run resumes from its database)");
            a.Refuse("run", ["--seed", "--kernel", "--vms", "--vcpus", "--fwb", "--no-fwb", "--dic", "--no-dic", "--run-id"], "--resume (the recorded run sets it)");
            previous = await Persistence.EventLog.RunLog.InfoAsync(MartenStores.Get(cs), resume);
            // Only a seeded run can go on: its record names the workload (VMs × vCPUs, seed) to continue.
            var notResumable = previous switch
            {
                null => $"no run '{resume}' (actorsim runs lists them)",
                { Scenario: { } scenarioFile } => $"run '{resume}' is scenario {scenarioFile}'s: a scenario's steps do not go on (run the scenario again)",
                { Imported: not null } => $"run '{resume}' was imported: an event log does not record the workload (VMs x vCPUs) to continue",
                { Vms: 0 } => $"run '{resume}' does not record the workload (VMs x vCPUs) to continue",
                _ => null,
            };
            if (previous is null || notResumable is not null) { Console.Error.WriteLine($"actorsim run: {notResumable}"); return 2; }
            RuleSets.TryParse(previous.Kernel, out rules);
            policy = new KernelPolicy(rules, new CpuFeatures(previous.Fwb, previous.Dic));
            (vms, vcpus) = (previous.Vms, previous.Vcpus);
            seed = (int)previous.Seed + 1; // the continuation draws new choices
            // The run records the build that started it, so it can be reproduced; another build's events
            // from here on would pass for that build's (a changed decider shows as replay mismatches).
            if (previous.Commit is { } started && BuildInfo.Commit is { } current && started != current)
                Console.Error.WriteLine($"actorsim run: note: run '{resume}' was started by build {started[..7]}; this is build {current[..7]}, whose events it gets from now on (the run records the first)");
        }
        var runId = resume ?? a.Get("--run-id") ?? Database.NewRunId("run");
        if (!(resume is null ? Database.IsNewRunId(runId) : Database.IsRunId(runId))) throw new UsageException($"run: {Database.NotARunId(runId)}");
        // Held while this process writes the run (RunLock): a second --resume of it, which would write
        // its streams from a second journal, or a delete of it is refused meanwhile.
        await using var runLock = cs is null ? null : await RunLock.TryAcquireAsync(cs, runId)
            ?? throw new UsageException($"run: run '{runId}' is being written by another actorsim (it holds the run's lock)");
        // A new run under an id the database has: its actors would recover the old run's state and the
        // set-up would run again on top of it. Continuing a run is --resume.
        if (resume is null && cs is not null && await Persistence.EventLog.RunLog.RunExistsAsync(MartenStores.Get(cs), runId))
            throw new UsageException($"run: run '{runId}' exists already (--resume {runId} continues it; or give another --run-id)");
        EventLogSink? exportSink = null;
        try
        {
            if (exportFile is not null) abandon = (exportSink = new EventLogSink(exportFile)).Abandon;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"actorsim run: --export {exportFile}: cannot write: {e.Message}");
            return 2;
        }
        using var ownSink = exportSink; // the writer actor disposes it when it stops; this, if the run ends before
        RunMetrics metrics;
        try
        {
            metrics = new RunMetrics(runId, metricsFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"actorsim run: --metrics {metricsFile}: cannot write: {e.Message}");
            return 2;
        }
        using var ownMetrics = metrics;

        Console.WriteLine($"run: {runId}{(resume is null ? "" : " (resumed)")}");
        Console.WriteLine($"  kernel {policy}, {vms} VMs x {vcpus} vCPUs, seed {seed}, {(rounds == long.MaxValue ? $"{duration.TotalSeconds:0}s" : $"{rounds} rounds")}, journal {(cs is null ? "in memory" : MartenStores.Describe(cs))}");
        var info = previous ?? new RunInfo
        {
            Id = runId, Seed = seed, Kernel = rules.Label(), Fwb = policy.Cpu.Fwb, Dic = policy.Cpu.Dic, WordSize = 64,
            Vms = vms, Vcpus = vcpus, Commit = BuildInfo.Commit, CommitModified = BuildInfo.Modified, Started = DateTimeOffset.UtcNow,
        };
        if (cs is not null) await Database.RecordRunAsync(cs, info);
        // The lock kept across a database restart or a dropped connection (its session ends with them): taken
        // again within a second of the database answering; lost for good if another process took it or the
        // run was deleted meanwhile, which stops the run (below).
        runLock?.Keep(async ct => await Persistence.EventLog.RunLog.InfoAsync(MartenStores.Get(cs!), runId, ct) is not null, TimeSpan.FromSeconds(1));
        var lockLost = runLock?.Lost ?? new TaskCompletionSource<string>().Task;

        await using var hosted = await HostedActorSystem.StartAsync("actorsim", SimHost.BaseConfig(a.Has("--deterministic")), cs, outageLimit);
        var system = hosted.System;
        var counter = system.ActorOf(ActorProps.Of(() => new Counter()), "counter");
        var exporter = exportSink is null ? null : system.ActorOf(ActorProps.Of(() => new ExportWriter(exportSink)), "export");
        if (exporter is not null) await exporter.Ask<ExportWriter.Ready>(new ExportWriter.Ready());
        var unavailable = new TaskCompletionSource<Persistence.Journal.JournalUnavailable>(TaskCreationOptions.RunContinuationsAsynchronously);
        var database = new DatabaseState(cs is null ? "in-memory" : "up");
        system.ActorOf(ActorProps.Of(() => new OutageWatch(unavailable, outageLimit, database, live ? _ => { } : Console.WriteLine)), "outage-watch");
        // The start — the actors' recovery from the journal, a new run's set-up, a resumed run's history —
        // rides out an outage as the rounds do, and stops at the outage limit as they do (exit 3): before,
        // a recovery that failed stopped its actor, and the start waited out its asks' timeout.
        async Task<(SimHost, SeededWorkload)> Start()
        {
            var host = await SimHost.StartAsync(system, runId, policy, SeededWorkload.Devices(), SeededWorkload.Vms(vms),
                new SimHostOptions(SnapshotEvery: a.Has("--snapshot-every") ? (int)a.GetLong("run", "--snapshot-every", 0, 0, int.MaxValue) : null, AskTimeout: OutageWatch.AskTimeout(outageLimit),
                    TestFault: Environment.GetEnvironmentVariable("ACTORSIM_TEST_FAULT") is { Length: > 0 } f ? f : null));
            SeededWorkload workload;
            if (resume is null) workload = await SeededWorkload.SetUpAsync(host, seed, vms, vcpus);
            else
            {
                // The actors recovered their state from the journal; the checker's replica is rebuilt from it too.
                var history = new List<DomainEventPublished>();
                await foreach (var e in Persistence.EventLog.RunLog.ReadAsync(MartenStores.Get(cs!), runId))
                    history.Add(new DomainEventPublished($"{runId}/{e.Stream}", e.Event, e.TimestampTicks));
                await host.Ask<Violations>(host.Checker, new CheckerWarmUp([.. history]));
                // Virtual time (deterministic mode) goes on from the newest event's, so the run's times never
                // go back; nothing runs yet, so moving it from here falls between the same events every time.
                if (history.Count > 0) SimClock.Advance(system, TimeSpan.FromTicks(Math.Max(0, history.Max(h => h.Time) - SimClock.Now(system))));
                Console.WriteLine($"  resumed after {history.Count} events");
                workload = await SeededWorkload.ResumeAsync(host, seed, vms, vcpus);
            }
            return (host, workload);
        }
        // Why the run stops before its work is done: its lock lost, or the database past the outage limit.
        Task<string> Stopping() => OutageWatch.Stopping(lockLost, unavailable.Task, cs!, outageLimit);
        var starting = Start();
        if (await Task.WhenAny(starting, unavailable.Task, lockLost) != starting)
        {
            Console.Error.WriteLine($"actorsim: {await Stopping()}");
            return 3;
        }
        var (host, workload) = await starting;

        // A reading of the run for the progress line and the metrics: the counts of the rounds answered so
        // far, the checker's, and the Marten journal's stats (the in-memory journal keeps none). An actor
        // that does not answer within `patience` (a deterministic run's one thread held by a journal
        // write in an outage) gives its figure of the reading before, so a report never holds up the loop
        // for long; the summary's reading waits as long as the run's asks do.
        MetricsSample? last = null;
        async Task<MetricsSample> Sample(TimeSpan elapsed, TimeSpan patience)
        {
            async Task<T> Read<T>(Func<Task<T>> ask, T fallback)
            {
                try
                {
                    return await ask();
                }
                catch (AskTimeoutException)
                {
                    return fallback;
                }
            }
            var (accesses, results, latency, totalLatency) = workload.Counted();
            var events = Read(() => counter.Ask<long>(new Counter.Get(), patience), last?.EventsPersisted ?? 0);
            var violations = Read(async () => (await host.Checker.Ask<Violations>(new GetViolations(), patience)).Items.Length, last?.InvariantViolations ?? 0);
            var journal = cs is null ? Task.FromResult<Persistence.Journal.JournalStats?>(null) : Read(async () => (Persistence.Journal.JournalStats?)await
                Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(null).Ask<Persistence.Journal.JournalStats>(Persistence.Journal.GetJournalStats.Instance, patience), last?.Journal);
            return MetricsSample.Take(elapsed, accesses, results, await events, await violations, database.Value, await journal)
                with { Latency = latency, TotalLatency = totalLatency };
        }
        var reportPatience = TimeSpan.FromSeconds(2);
        last = await Sample(TimeSpan.Zero, host.Timeout); // after the set-up: what the first interval is measured from
        metrics.Baseline(last);
        var clock = Stopwatch.StartNew();
        // The loop: rounds until the duration is over or a stop is asked for; a progress report every
        // second, also while a round waits (on the database in an outage: the rate then shows 0/s).
        async Task<int?> Loop(Action<Progress> report)
        {
            // What interrupts the wait on a round: the outage limit, or the next report's time. One task
            // for both, made once a report: a round waits on two tasks, as cheap as before reports could
            // come during a round (three: 10-25 % fewer accesses a second in memory).
            var tick = Task.Delay(TimeSpan.FromSeconds(1));
            var interrupt = Task.WhenAny(unavailable.Task, lockLost, tick);
            async Task Report()
            {
                var now = clock.Elapsed;
                var sample = await Sample(now, reportPatience);
                report(new Progress(sample, (sample.Accesses - last!.Accesses) / Math.Max(0.001, (now - last.Elapsed).TotalSeconds)));
                metrics.Publish(sample);
                last = sample;
                // A second after this reading began; at once if reading took longer (Task.Delay refuses a
                // negative wait).
                tick = Task.Delay(TimeSpan.FromTicks(Math.Max(0, (TimeSpan.FromSeconds(1) - (clock.Elapsed - now)).Ticks)));
                interrupt = Task.WhenAny(unavailable.Task, lockLost, tick);
            }
            // A run that stops on a failure still ends its metrics with a final line (the counts of the rounds
            // answered; figures an actor no longer gives are the line before's).
            async Task<int> Failed(string message)
            {
                Console.Error.WriteLine($"actorsim: {message}");
                metrics.Publish(await Sample(clock.Elapsed, reportPatience), final: true);
                await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
                return 3;
            }
            for (long n = 0; n < rounds && (rounds != long.MaxValue || clock.Elapsed < duration) && !stop.IsCancellationRequested; n++)
            {
                // A round in flight always completes (nothing acknowledged is lost), unless the database
                // stays away past the outage limit.
                var round = workload.RoundAsync();
                while (await Task.WhenAny(round, interrupt) != round && !unavailable.Task.IsCompleted && !lockLost.IsCompleted) await Report();
                if (lockLost.IsCompleted || !round.IsCompleted) return await Failed(await Stopping());
                try
                {
                    await round;
                }
                catch (AskTimeoutException)
                {
                    return await Failed(OutageWatch.StoppedAnswering(cs is not null));
                }
            }
            return null;
        }

        int? early;
        if (!live)
        {
            early = await Loop(p => Console.WriteLine($"  t={p.Elapsed.TotalSeconds,5:0}s accesses={p.Accesses,-9} {p.Rate,8:0}/s {p.Results} events={p.Events,-9} invariants={p.Invariants}{(p.Database == "outage" ? " database=outage" : "")}"));
        }
        else
        {
            // A live view on a terminal (Spectre.Console).
            var table = new Spectre.Console.Table().AddColumns("time", "accesses", "faults/s", "outcomes", "events persisted", "invariants", "database");
            table.AddRow("0s", "0", "-", "-", "0", "hold", database.Value);
            early = null;
            await Spectre.Console.AnsiConsole.Live(table).StartAsync(async ctx =>
            {
                early = await Loop(p =>
                {
                    table.UpdateCell(0, 0, $"{p.Elapsed.TotalSeconds:0}s").UpdateCell(0, 1, $"{p.Accesses}").UpdateCell(0, 2, $"{p.Rate:0}")
                        .UpdateCell(0, 3, p.Results).UpdateCell(0, 4, $"{p.Events}")
                        .UpdateCell(0, 5, p.Invariants == "hold" ? "[green]hold[/]" : "[red]VIOLATED[/]")
                        .UpdateCell(0, 6, p.Database == "outage" ? "[yellow]outage[/]" : p.Database);
                    if (stop.IsCancellationRequested) table.Caption(Draining);
                    ctx.Refresh();
                });
            });
        }
        if (early is { } code) return code;
        Interlocked.Exchange(ref signals, 1); // nothing left to drain: a signal from now on stops at once
        var elapsed = clock.Elapsed; // the run's, not the export's completion or the shutdown
        var secs = elapsed.TotalSeconds;
        var outputFailed = false;
        // `run --export /dev/stdout | head`: the reader has had what it wanted. The run goes on to its end
        // and is recorded; it then ends without a word of it, as a command that SIGPIPE ends does (128 + 13).
        // It said "cannot write: Broken pipe", exit 2 (bad input).
        var readerGone = false;
        if (exporter is not null)
        {
            var written = await exporter.Ask<ExportWriter.Finished>(new ExportWriter.Finish(EventLogHeader.FromRunInfo(info, 0))); // no timeout: a long run's file takes its time
            if (written.BrokenPipe) readerGone = true;
            else if (written.Error is { } error)
            {
                // Checked before the run (Args.GetOutputFile), so this is the file system changing under it.
                Console.Error.WriteLine($"actorsim run: --export {exportFile}: cannot write: {error}{(cs is null ? "" : " (the run is in the database: export --run)")}");
                outputFailed = true;
            }
        }
        var violations = (await host.Ask<Violations>(host.Checker, new GetViolations())).Items;
        var summary = await Sample(elapsed, host.Timeout);
        metrics.Publish(summary, final: true);
        if (metrics.BrokenPipe) readerGone = true;
        else if (metrics.Error is { } metricsError)
        {
            // Checked before the run (Args.GetOutputFile), so this is the file system changing under it.
            Console.Error.WriteLine($"actorsim run: --metrics {metricsFile}: cannot write: {metricsError}");
            outputFailed = true;
        }
        await hosted.StopAsync(); // the journal writes what is queued before it stops
        Console.WriteLine($"summary: run {runId}{(stop.IsCancellationRequested ? " (stopped early, drained)" : "")}");
        Console.WriteLine($"  {summary.Accesses} guest accesses in {secs:0.0}s ({summary.Accesses / Math.Max(secs, 0.001):0}/s), {summary.EventsPersisted} events persisted");
        Console.WriteLine($"  outcomes: {Outcomes(summary.Outcomes)}");
        Console.WriteLine($"  invariants: {(violations.Length == 0 ? "hold" : $"{violations.Length} violated, first: {violations[0].Violation} at event {violations[0].Seq}")}");
        // The summary first: a database away as the run ends holds up only the record of its end.
        if (cs is not null && await RecordEnd(cs, info, lockLost, outageLimit, "run") is { } notRecorded) return notRecorded;
        return outputFailed ? 2 : readerGone ? 141 : violations.Length == 0 ? 0 : 1;
    }

    /// <summary>Records the end of a run (or a scenario's run) that did its work: null once recorded, else
    /// exit 3 with why. Not when its lock was lost meanwhile: the run is then another process's, or deleted.</summary>
    internal static async Task<int?> RecordEnd(string cs, RunInfo info, Task<string> lockLost, TimeSpan outageLimit, string command)
    {
        var why = lockLost.IsCompleted ? $"{await lockLost}: its end not recorded" : await Database.RecordRunEndAsync(cs, info, outageLimit);
        if (why is null) return null;
        Console.Error.WriteLine($"actorsim {command}: {why}");
        return 3;
    }

    /// <summary>A progress line's figures: a sample, and the access rate since the line before.</summary>
    private sealed record Progress(MetricsSample Sample, double Rate)
    {
        public TimeSpan Elapsed => Sample.Elapsed;
        public long Accesses => Sample.Accesses;
        public string Results => Outcomes(Sample.Outcomes);
        public long Events => Sample.EventsPersisted;
        public string Invariants => Sample.InvariantViolations == 0 ? "hold" : "VIOLATED";
        public string Database => Sample.Database;
    }

    /// <summary>"Mapped=… Retry=…", or "none" before the first access (as summary says it): a run of no
    /// rounds printed "outcomes: " and nothing.</summary>
    private static string Outcomes(IReadOnlyDictionary<FaultResult, long> results) =>
        results.Count == 0 ? "none" : string.Join(" ", Enum.GetValues<FaultResult>().Where(results.ContainsKey).Select(r => $"{r}={results[r]}"));
}
