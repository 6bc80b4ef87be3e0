using System.Text.Json;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using ActorSim.Persistence;
using ActorSim.Persistence.EventLog;

namespace ActorSim.Host.Commands;

/// <summary>runs, summary, delete, export, import, replay: the recorded side of the host.</summary>
public static class DataCommands
{
    /// <summary>The command's connection string, once the database answers; null when it does not (exit 3).</summary>
    private static async Task<string?> Connect(string command, Args a)
    {
        var db = Database.Required(command, a.Get("--db"));
        return await Database.ReachableAsync(db) ? db.ConnectionString : null;
    }

    /// <summary>Says that the database has no run of this id, as every command given one does (exit 2).</summary>
    internal static int NoRun(string command, string run)
    {
        Console.Error.WriteLine($"actorsim {command}: no run '{run}' (actorsim runs lists them)");
        return 2;
    }

    /// <summary>A run that gave no events: none of this id (<see cref="NoRun"/>), or one whose run
    /// record has no events yet (its set-up did not get as far). Exit 2 either way.</summary>
    internal static async Task<int> NoEvents(string command, Marten.IDocumentStore store, string run)
    {
        if (!await RunLog.RunExistsAsync(store, run)) return NoRun(command, run);
        Console.Error.WriteLine($"actorsim {command}: run '{run}' has no events");
        return 2;
    }

    /// <summary>A run's state as <c>runs</c> shows it: running (a process holds its <see cref="RunLock"/>),
    /// imported, ended (its end recorded), or stopped (no end recorded and nobody writing it: killed, or
    /// stopped by a failure; <c>run --resume</c> continues a seeded run).</summary>
    private static string Status(Persistence.ReadSide.RunInfo r, HashSet<string> running) =>
        running.Contains(r.Id) ? "running" : r.Imported is not null ? "imported" : r.Ended is not null ? "ended" : "stopped";

    /// <summary>Whether a process writes the run now (holds its <see cref="RunLock"/>): asked before
    /// <c>export</c> and <c>replay --run</c> read it, which then read the run so far, and say so.</summary>
    private static async Task<bool> BeingWrittenAsync(string cs, string run) =>
        (await RunLock.HeldAsync(cs, [run])).Contains(run);

    public static async Task<int> Runs(string[] args)
    {
        var a = Args.Parse("runs", args, ["--json"], ["--db"]);
        if (await Connect("runs", a) is not { } cs) return 3;
        var runs = await RunLog.RunsAsync(MartenStores.Get(cs));
        var running = await RunLock.HeldAsync(cs, [.. runs.Select(r => r.Id)]);
        if (a.Has("--json"))
        {
            var list = new System.Text.Json.Nodes.JsonArray();
            foreach (var r in runs)
            {
                var o = JsonSerializer.SerializeToNode(r, CliJson.CamelCase)!.AsObject();
                o["status"] = Status(r, running);
                list.Add(o);
            }
            Console.WriteLine(list.ToJsonString(CliJson.Plain));
            return 0;
        }
        Console.WriteLine($"{"run",-48} {"kernel",-6} {"fwb",-3} {"dic",-3} {"seed",-10} {"started",-20} {"status",-8} scenario");
        foreach (var r in runs)
            Console.WriteLine($"{Printable.Of(r.Id),-48} {r.Kernel,-6} {(r.Fwb ? 1 : 0),-3} {(r.Dic ? 1 : 0),-3} {r.Seed,-10} {r.Started:yyyy-MM-dd HH:mm:ss}  {Status(r, running),-8} {(r.Scenario is null ? "" : Printable.Of(r.Scenario))}");
        return 0;
    }

    /// <summary><c>actorsim delete RUN...</c> or <c>delete --older-than AGE</c> (the runs started before
    /// now - AGE, by their run records): removes runs whole (<see cref="RunLog.DeleteAsync"/>), all
    /// of them or none: a run the database does not have, or one a process is writing, is bad input
    /// (exit 2) and nothing is deleted. With <c>--older-than</c> a run being written (a long-running host
    /// started before the age, say) is skipped and named, so a periodic clean-up goes on working.
    /// <c>--dry-run</c> names the runs it would delete.</summary>
    public static async Task<int> Delete(string[] args)
    {
        var a = Args.Parse("delete", args, ["--dry-run"], ["--db", "--older-than"]);
        if (a.Positional.Count == 0 && !a.Has("--older-than"))
            throw new UsageException("delete: name the runs to delete (actorsim runs lists them), or give --older-than AGE");
        if (a.Positional.Count > 0 && a.Has("--older-than")) throw new UsageException("delete: name runs or give --older-than, not both");
        var age = a.GetDuration("delete", "--older-than", TimeSpan.Zero);
        var runs = a.Positional.Distinct(StringComparer.Ordinal).ToList();
        if (runs.FirstOrDefault(r => !Database.IsRunId(r)) is { } bad) throw new UsageException($"delete: {Database.NotARunId(bad)}");
        if (await Connect("delete", a) is not { } cs) return 3;
        var store = MartenStores.Get(cs);
        if (a.Has("--older-than"))
        {
            // The runs recorded as started (or imported) before now - AGE.
            var now = DateTimeOffset.UtcNow;
            var before = age < now - DateTimeOffset.MinValue ? now - age : DateTimeOffset.MinValue;
            runs = [.. (await RunLog.RunsAsync(store)).Where(r => r.Started < before).Select(r => r.Id)];
            if (runs.Count == 0)
            {
                Console.WriteLine($"no run started before {before:yyyy-MM-dd HH:mm:ss} UTC");
                return 0;
            }
        }
        foreach (var run in a.Has("--older-than") ? [] : runs) // --older-than's come from the run records
            if (!await RunLog.RunExistsAsync(store, run))
            {
                Console.Error.WriteLine($"actorsim delete: no run '{run}' (nothing deleted)");
                return 2;
            }
        var skipInUse = a.Has("--older-than");
        if (a.Has("--dry-run"))
        {
            // What the delete would do, with the runs being written now.
            var running = await RunLock.HeldAsync(cs, runs);
            if (!skipInUse && runs.FirstOrDefault(running.Contains) is { } busy)
            {
                Console.Error.WriteLine($"actorsim delete: {new RunInUseException(busy).Message} (nothing would be deleted; stop it first)");
                return 2;
            }
            foreach (var run in runs) Console.WriteLine(running.Contains(run) ? $"would skip run {run}: it is being written by a running actorsim" : $"would delete run {run}");
            return 0;
        }
        IReadOnlyList<DeletedRun> deleted;
        try
        {
            deleted = await RunLog.DeleteAsync(store, runs, skipInUse);
        }
        catch (RunInUseException e)
        {
            Console.Error.WriteLine($"actorsim delete: {e.Message} (nothing deleted; stop it first)");
            return 2;
        }
        foreach (var d in deleted)
            Console.WriteLine($"deleted run {d.Run}: {d.Streams} streams, {d.Events} events, {d.Decisions} decisions");
        foreach (var run in runs.Except(deleted.Select(d => d.Run)))
            Console.WriteLine($"skipped run {run}: it is being written by a running actorsim");
        return 0;
    }

    /// <summary><c>actorsim summary --run ID</c>: what a run is and what it decided, from the read side
    /// (<see cref="Persistence.ReadSide.RunSummaries"/>) and its run record: events, decisions by result
    /// and by stage-2 memory type, errors, invariant violations, status.</summary>
    public static async Task<int> Summary(string[] args)
    {
        var a = Args.Parse("summary", args, ["--json"], ["--db", "--run"]);
        var run = a.Get("--run") ?? throw new UsageException("summary: --run ID is required (actorsim runs lists them)");
        if (a.Positional.Count > 0) throw new UsageException($"summary: unexpected '{a.Positional[0]}'");
        if (await Connect("summary", a) is not { } cs) return 3;
        var store = MartenStores.Get(cs);
        // A run without its record (its streams only) still has a summary.
        var info = await RunLog.InfoAsync(store, run);
        if (info is null && !await RunLog.RunExistsAsync(store, run)) return NoRun("summary", run);
        Persistence.ReadSide.RunSummary summary;
        await using (var session = store.QuerySession()) summary = await Persistence.ReadSide.RunSummaries.ForRunAsync(session, run);
        var status = info is null ? null : Status(info, await RunLock.HeldAsync(cs, [run]));
        if (a.Has("--json"))
        {
            var o = JsonSerializer.SerializeToNode(summary, CliJson.CamelCase)!.AsObject();
            o["run"] = info is null ? null : JsonSerializer.SerializeToNode(info, CliJson.CamelCase);
            o["status"] = status;
            Console.WriteLine(o.ToJsonString(CliJson.Plain));
            return 0;
        }
        static string Counts(Dictionary<string, long> c) => c.Count == 0 ? "none" : string.Join(" ", c.Select(kv => $"{kv.Key}={kv.Value}"));
        Console.WriteLine($"run {run}{(status is null ? "" : $" ({status})")}");
        if (info is not null)
        {
            Console.WriteLine($"  kernel {info.Kernel} fwb={(info.Fwb ? 1 : 0)} dic={(info.Dic ? 1 : 0)}{(info.Mte ? " mte=1" : "")} word={info.WordSize}, seed {info.Seed}" +
                $"{(info.Vms > 0 ? $", {info.Vms} VMs x {info.Vcpus} vCPUs" : "")}{(info.Scenario is null ? "" : $", scenario {Printable.Of(info.Scenario)}")}");
            Console.WriteLine($"  started {info.Started:yyyy-MM-dd HH:mm:ss}{(info.Ended is { } end ? $", ended {end:yyyy-MM-dd HH:mm:ss} ({(end - info.Started).TotalSeconds:0.#}s)" : "")}" +
                $"{(info.Commit is null ? "" : $", commit {BuildInfo.Named(info.Commit[..Math.Min(12, info.Commit.Length)], info.CommitModified)}")}");
        }
        Console.WriteLine($"  {summary.Events} events, {summary.Decisions} decisions ({summary.Errors} errors)");
        Console.WriteLine($"  by result: {Counts(summary.ByResult)}");
        Console.WriteLine($"  by stage-2 memory type: {Counts(summary.ByMemType)}");
        Console.WriteLine($"  invariants: {(summary.InvariantViolations == 0 ? "hold" : $"{summary.InvariantViolations} violated")}");
        return 0;
    }

    public static async Task<int> Export(string[] args)
    {
        var a = Args.Parse("export", args, [], ["--db", "--run", "-o"]);
        var run = a.Get("--run") ?? throw new UsageException("export: --run ID is required");
        var output = a.GetOutputFile("export", "-o") ?? throw new UsageException("export: -o FILE is required");
        if (await Connect("export", a) is not { } cs) return 3;
        var store = MartenStores.Get(cs);
        var info = await RunLog.InfoAsync(store, run);
        var beingWritten = await BeingWrittenAsync(cs, run);
        // The events go to the file as they are read (EventLogSink), not held: a run can be millions.
        // Ctrl-C / SIGTERM end the export at once, and its part file with it (they left it behind);
        // listened for before the file exists.
        EventLogSink? made = null;
        using var interrupts = Interrupts.CleanUpOn(() => made?.Abandon());
        EventLogSink sink;
        try
        {
            made = sink = new EventLogSink(output);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"actorsim export: -o {output}: cannot write: {e.Message}");
            return 2;
        }
        using (sink)
        {
            KernelPolicy? first = null; // for a run without its metadata: the first decision's policy
            var events = RunLog.ReadAsync(store, run);
            // (Not when the log itself goes to a device or a pipe: `-o /dev/stdout` on the terminal.)
            if (!sink.WritesInPlace) events = new TerminalProgress($"exporting run {run}").OverAsync(events);
            try
            {
                await foreach (var e in events)
                {
                    first ??= DecisionEvents.Of(e.Event).FirstOrDefault()?.Inputs.Policy;
                    sink.Append(e);
                }
                if (info is null && sink.Count == 0) return NoRun("export", run);
                info ??= new Persistence.ReadSide.RunInfo { Id = run, Kernel = first?.RuleSet.Label() ?? "6.9", Fwb = first?.Cpu.Fwb ?? true, Dic = first?.Cpu.Dic ?? true };
                await sink.CompleteAsync(EventLogHeader.FromRunInfo(info, sink.Count));
            }
            catch (IOException e) when (SpecialFiles.IsBrokenPipe(e))
            {
                // `export -o /dev/stdout | head`: the reader has had what it wanted. Ended without a word, as a
                // command that SIGPIPE ends is (128 + 13); it said "cannot write: Broken pipe", exit 2 (bad input).
                return 141;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"actorsim export: -o {output}: cannot write: {e.Message}");
                return 2;
            }
        }
        // On stderr when the log went to a device or a pipe (-o /dev/stdout): the log alone on stdout.
        (sink.WritesInPlace ? Console.Error : Console.Out).WriteLine($"exported {sink.Count} events of run {run} to {output}");
        // A run exported as it is written looked whole: the same line, exit 0, a valid log.
        if (beingWritten)
            Console.Error.WriteLine($"actorsim export: run '{run}' is being written by a running actorsim: the file holds the events it had so far; export it again once it has ended for the whole run");
        return 0;
    }

    public static async Task<int> Import(string[] args)
    {
        var a = Args.Parse("import", args, [], ["--db", "--as"]);
        if (a.Positional.Count != 1) throw new UsageException("import: usage: actorsim import FILE [--as NEW_ID]");
        var file = Args.InputFile(a.Positional[0]);
        if (Args.InputFileProblem(file) is { } problem) { Console.Error.WriteLine($"actorsim import: {problem}"); return 2; }
        if (SpecialFiles.IsSpecial(file))
        {
            // Read twice below: a pipe's second reading found it empty ("header: empty file").
            Console.Error.WriteLine($"actorsim import: {file}: not a regular file (import reads its file twice, to check it and then to write it; save the log to a file first)");
            return 2;
        }
        // Two passes over the file, neither holding the run: the first reads and validates every line
        // (a bad file writes nothing), the second writes the events in one transaction, a chunk at a time.
        EventLogHeader header;
        try
        {
            using var log = EventLogFile.Open(file);
            header = log.Header;
            foreach (var _ in log.Events) { }
        }
        catch (EventLogFormatException e)
        {
            Console.Error.WriteLine($"actorsim import: {Printable.Of(e.Message)}");
            return 2;
        }
        var id = a.Get("--as") ?? header.Run;
        if (!Database.IsNewRunId(id))
        {
            // Checked before anything is written: imported, such an id would take other runs' streams for its own.
            Console.Error.WriteLine(a.Has("--as") ? $"actorsim import: --as: {Database.NotARunId(id)}" : $"actorsim import: {file}:1: run: {Database.NotARunId(id)}; import it with --as NEW_ID");
            return 2;
        }
        if (await Connect("import", a) is not { } cs) return 3;
        var store = MartenStores.Get(cs);
        // Held while the import writes (RunLock), as run and scenario hold it: a second import of the same
        // id at the same moment is refused here; it passed the check below too and failed on the streams'
        // key instead ("database error", exit 3).
        await using var runLock = await RunLock.TryAcquireAsync(cs, id);
        if (runLock is null)
        {
            Console.Error.WriteLine($"actorsim import: run '{id}' is being written by another actorsim (it holds the run's lock)");
            return 2;
        }
        if (await RunLog.RunExistsAsync(store, id))
        {
            Console.Error.WriteLine($"actorsim import: run '{id}' exists already (use --as NEW_ID)");
            return 2;
        }
        long imported;
        try
        {
            using var log = EventLogFile.Open(file);
            imported = await RunLog.WriteAsync(store, header.ToRunInfo(id, DateTimeOffset.UtcNow), new TerminalProgress($"importing run {id}", header.Events).Over(log.Events));
        }
        catch (EventLogFormatException e) // the file changed since the first pass: rolled back
        {
            Console.Error.WriteLine($"actorsim import: {e.Message} (nothing imported)");
            return 2;
        }
        Console.WriteLine($"imported {imported} events as run {id}");
        return 0;
    }

    private static async IAsyncEnumerable<T> AsAsync<T>(IEnumerable<T> items)
    {
        foreach (var x in items) yield return x;
        await Task.CompletedTask;
    }

    public static async Task<int> Replay(string[] args)
    {
        var a = Args.Parse("replay", args, ["--verify", "--json", "--fwb", "--no-fwb", "--dic", "--no-dic"], ["--db", "--run", "--file", "--kernel"]);
        if (a.Has("--run") == a.Has("--file")) throw new UsageException("replay: give exactly one of --run ID or --file FILE");
        RuleSet? kernel = null;
        if (a.Get("--kernel") is { } k)
        {
            if (!RuleSets.TryParse(k, out var rs)) throw new UsageException($"replay: --kernel '{k}' is not 6.8, 6.9 or 6.17");
            kernel = rs;
        }
        bool? fwb = a.Has("--fwb") ? true : a.Has("--no-fwb") ? false : null;
        bool? dic = a.Has("--dic") ? true : a.Has("--no-dic") ? false : null;
        Func<KernelPolicy, KernelPolicy>? redecide = kernel is null && fwb is null && dic is null ? null
            : p => p with { RuleSet = kernel ?? p.RuleSet, Cpu = new CpuFeatures(fwb ?? p.Cpu.Fwb, dic ?? p.Cpu.Dic) };

        IAsyncEnumerable<RunEvent> events;
        Marten.DocumentStore? store = null;
        var beingWritten = false;
        Persistence.ReadSide.RunInfo? info = null; // the run's policy, for its memslots (Replay.Recorded)
        // A file is read as it is replayed (a chunk of events in memory at a time, not the whole run);
        // a problem in it ends the replay when its line is reached, with the same error and exit 2.
        using var log = a.Get("--file") is { } file ? OpenLog("replay", file) : null;
        if (log is not null) events = AsAsync(log.Events);
        else if (a.Has("--file")) return 2; // OpenLog said why
        else
        {
            if (await Connect("replay", a) is not { } cs) return 3;
            store = MartenStores.Get(cs);
            events = RunLog.ReadAsync(store, a.Get("--run")!);
            beingWritten = await BeingWrittenAsync(cs, a.Get("--run")!);
            if (redecide is not null) info = await RunLog.InfoAsync(store, a.Get("--run")!);
        }
        var replay = new Replay(redecide, (log?.Header ?? (info is null ? null : EventLogHeader.FromRunInfo(info, 0)))?.Policy);
        var verify = a.Has("--verify");
        var progress = new TerminalProgress($"replaying {(a.Get("--run") is { } id ? $"run {id}" : a.Get("--file"))}", log?.Header.Events);
        try
        {
            await foreach (var e in progress.OverAsync(events))
            {
                replay.Apply(e.Seq, e.Stream, e.Event);
                if (verify && replay.FirstMismatch is { } m)
                {
                    progress.Clear();
                    Console.WriteLine($"MISMATCH at seq {m.Seq} ({m.Stream}):");
                    Console.WriteLine($"  recorded:   {m.Recorded}");
                    Console.WriteLine($"  recomputed: {m.Recomputed}");
                    foreach (var d in Differences(m.Recorded, m.Recomputed)) Console.WriteLine($"  differs in {d}");
                    return 1;
                }
            }
        }
        catch (EventLogFormatException e)
        {
            Console.Error.WriteLine($"actorsim replay: {Printable.Of(e.Message)}");
            return 2;
        }
        if (replay.Events == 0)
        {
            if (store is not null) return await NoEvents("replay", store, a.Get("--run")!);
            Console.Error.WriteLine($"actorsim replay: {a.Get("--file")} has no events");
            return 2;
        }
        if (beingWritten)
            Console.Error.WriteLine($"actorsim replay: run '{a.Get("--run")}' is being written by a running actorsim: replayed the events it had so far");
        // Its events without its record (a journal written by other code than actorsim's run or scenario).
        if (redecide is not null && store is not null && info is null)
            Console.Error.WriteLine($"actorsim replay: run '{a.Get("--run")}' has no run record, so not the policy it was recorded under: its memslots were not decided again");
        var groups = replay.Changes.GroupBy(c => (c.Before, c.After)).OrderByDescending(g => g.Count()).ThenBy(g => g.Key.Before, StringComparer.Ordinal)
            .Select(g => new { before = g.Key.Before, after = g.Key.After, count = g.Count() }).ToArray();
        if (a.Has("--json"))
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                events = replay.Events, decisions = replay.Decisions, mismatches = replay.Mismatches,
                changed = replay.Changes.Count, changes = groups,
                memslots_refused = replay.MemslotsRefused.Count,
                memslots_refused_examples = replay.MemslotsRefused.Take(10).Select(m => new { seq = m.Seq, stream = m.Stream, vm = m.Vm, slot = m.Slot, gpa = $"0x{m.Gpa:x}", size = $"0x{m.Size:x}", errno = m.Errno.ToString() }),
                examples = replay.Changes.Take(10).Select(c => new { seq = c.Seq, stream = c.Stream, vm = c.Vm, gpa = $"0x{c.Gpa:x}", op = c.Op.ToString(), nisv = c.Nisv,
                    s1ptw = c.Syndrome.HasFlag(AbortSyndrome.S1ptw), cm = c.Syndrome.HasFlag(AbortSyndrome.Cm), before = c.Before, after = c.After }),
            }, CliJson.Plain));
        }
        else
        {
            Console.WriteLine($"replayed {replay.Events} events, {replay.Decisions} decisions: " +
                              (replay.Mismatches == 0 ? "every decision reproduces" : $"{replay.Mismatches} do not reproduce (first at seq {replay.FirstMismatch!.Seq})"));
            if (redecide is not null)
            {
                Console.WriteLine($"re-decided under {(kernel is { } r ? r.Label() : "the recorded rule set")}{(fwb is { } f ? $" fwb={(f ? 1 : 0)}" : "")}{(dic is { } d ? $" dic={(d ? 1 : 0)}" : "")}: {replay.Changes.Count} of {replay.Decisions} decisions change");
                foreach (var g in groups) Console.WriteLine($"  {g.count,8}  {g.before} -> {g.after}");
                foreach (var c in replay.Changes.Take(5)) Console.WriteLine($"  e.g. seq {c.Seq} {c.Vm} gpa 0x{c.Gpa:x} {ExplainCommand.AccessText(c.Op.ToString(), c.Syndrome)}: {c.Before} -> {c.After}");
                // A refused memslot's faults are re-decided as finding no memslot (Replay.MemslotsRefused).
                if (replay.MemslotsRefused.Count > 0)
                    Console.WriteLine($"  {replay.MemslotsRefused.Count} memslot{(replay.MemslotsRefused.Count == 1 ? "" : "s")} set in the run would be refused (their faults counted above as finding no memslot):");
                foreach (var m in replay.MemslotsRefused.Take(5))
                    Console.WriteLine($"  e.g. seq {m.Seq} {Printable.Of(m.Vm)} slot {m.Slot} gpa 0x{m.Gpa:x}..0x{m.Gpa + m.Size:x}: KVM_SET_USER_MEMORY_REGION -> {m.Errno}");
            }
        }
        return replay.Mismatches == 0 ? 0 : 1;
    }

    /// <summary>Each field in which a recorded outcome and the recomputed one differ, with both values:
    /// the one-line descriptions above leave the permissions out, and a log edited there (or a decision
    /// that changed only there) would print two identical lines.</summary>
    internal static IEnumerable<string> Differences(FaultOutcome recorded, FaultOutcome recomputed)
    {
        static string Show<T>(T v) => v?.ToString() is { Length: > 0 } s ? s : "none";
        IEnumerable<(string Field, object? Recorded, object? Recomputed)> fields =
        [
            ("result", recorded.Result, recomputed.Result),
            ("errno", recorded.Errno, recomputed.Errno),
            ("path", recorded.Path, recomputed.Path),
            ("prot", recorded.Prot, recomputed.Prot),
            ("leaf.gpa", recorded.Leaf?.Gpa, recomputed.Leaf?.Gpa),
            ("leaf.level", recorded.Leaf?.Level, recomputed.Leaf?.Level),
            ("leaf.prot", recorded.Leaf?.Prot, recomputed.Leaf?.Prot),
            ("leaf.descriptor", recorded.Leaf?.Descriptor, recomputed.Leaf?.Descriptor),
        ];
        foreach (var (field, r, c) in fields)
            if (!Equals(r, c)) yield return $"{field}: recorded ({Show(r)}), recomputed ({Show(c)})";
    }

    /// <summary>The file opened with its header read, or null after saying on stderr what is wrong
    /// (replay --file, explain --file).</summary>
    internal static EventLogReader? OpenLog(string command, string file)
    {
        file = Args.InputFile(file);
        if (Args.InputFileProblem(file) is { } problem) { Console.Error.WriteLine($"actorsim {command}: {problem}"); return null; }
        try { return EventLogFile.Open(file); }
        catch (EventLogFormatException e) { Console.Error.WriteLine($"actorsim {command}: {Printable.Of(e.Message)}"); return null; }
    }
}
