using ActorSim.Tests;
using Npgsql;

namespace ActorSim.Host.Tests;

/// <summary><c>actorsim delete RUN...</c> on the real database: a run goes whole, its neighbours stay.</summary>
public class DeleteRunTests
{
    private static string Db =>
        Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } s ? s : throw new InvalidOperationException("ACTORSIM_DB is not set: run through scripts/test.sh");

    /// <summary>What the database holds of a run, table by table.</summary>
    private static Dictionary<string, long> Rows(string run)
    {
        using var conn = new NpgsqlConnection(Db);
        conn.Open();
        var counts = new Dictionary<string, long>();
        foreach (var (name, sql) in new[]
        {
            ("streams", "select count(*) from actorsim.mt_streams where starts_with(id, @p)"),
            ("events", "select count(*) from actorsim.mt_events where starts_with(stream_id, @p)"),
            ("snapshots", "select count(*) from actorsim.mt_doc_snapshotdocument where starts_with(id, @p)"),
            ("decision rows", "select count(*) from actorsim.mt_decision_rows where run = @r"),
            ("decision events", "select count(*) from actorsim.mt_decision_events where run = @r"),
            ("run record", "select count(*) from actorsim.mt_doc_runinfo where id = @r"),
        })
        {
            using var cmd = new NpgsqlCommand(sql, conn);
            cmd.Parameters.AddWithValue("p", run + "/");
            cmd.Parameters.AddWithValue("r", run);
            counts[name] = (long)cmd.ExecuteScalar()!;
        }
        return counts;
    }

    [Fact]
    public void A_run_is_deleted_whole_and_runs_whose_ids_it_begins_or_matches_as_a_pattern_stay()
    {
        var id = $"del_{Guid.NewGuid():N}"[..16]; // '_' would match any character in a LIKE pattern
        var (exit, output, err) = Cli.Run("run", "--duration", "2s", "--seed", "9", "--vms", "1", "--vcpus", "2", "--snapshot-every", "10", "--run-id", id);
        Assert.True(exit == 0, output + err);
        var before = Rows(id);
        // A decision is a row of one table or part of a row of the other, as batches formed in this run.
        Assert.All(before.Where(c => !c.Key.StartsWith("decision")), c => Assert.True(c.Value > 0, $"{c.Key}: none before the delete: {string.Join(", ", before)}"));
        Assert.True(before["decision rows"] + before["decision events"] > 0, string.Join(", ", before));
        // Neighbours: one whose id begins with the run's, one that the id matches as a LIKE pattern.
        var file = Path.Combine(Path.GetTempPath(), $"{id}.jsonl");
        Assert.Equal(0, Cli.Run("export", "--run", id, "-o", file).Exit);
        string[] neighbours = [id + "-copy", id.Replace('_', 'x')];
        foreach (var n in neighbours) Assert.Equal(0, Cli.Run("import", file, "--as", n).Exit);
        var neighbourRows = neighbours.ToDictionary(n => n, Rows);
        // An import appends a stream's events in one commit: its decisions are rows of mt_decision_events.
        Assert.All(neighbourRows.Values, r => Assert.True(r["decision events"] > 0, string.Join(", ", r)));

        (exit, output, err) = Cli.Run("delete", id);
        Assert.True(exit == 0, output + err);
        Assert.Contains($"deleted run {id}: {before["streams"]} streams, {before["events"]} events", output);
        Assert.All(Rows(id), c => Assert.True(c.Value == 0, $"{c.Key}: {c.Value} left"));
        foreach (var n in neighbours)
        {
            Assert.Equal(neighbourRows[n], Rows(n));
            var verify = Cli.Run("replay", "--run", n, "--verify");
            Assert.True(verify.Exit == 0, verify.Out + verify.Err);
        }
        Assert.DoesNotContain(id + " ", Cli.Run("runs").Out);

        // The id is free again: a new run under it starts from nothing, not from the deleted one's state.
        (exit, output, err) = Cli.Run("run", "--rounds", "3", "--vms", "1", "--vcpus", "1", "--run-id", id);
        Assert.True(exit == 0, output + err);
        Assert.DoesNotContain("resumed", output);
        Assert.Equal(0, Cli.Run("delete", id, neighbours[0], neighbours[1]).Exit);
        foreach (var n in neighbours) Assert.All(Rows(n), c => Assert.True(c.Value == 0, $"{n}: {c.Key}: {c.Value} left"));
    }

    [Fact]
    public void A_run_the_database_does_not_have_deletes_nothing_and_exits_2()
    {
        var id = $"keep-{Guid.NewGuid():N}"[..17];
        var (exit, output, err) = Cli.Run("run", "--rounds", "5", "--vms", "1", "--vcpus", "1", "--run-id", id);
        Assert.True(exit == 0, output + err);
        var before = Rows(id);
        (exit, output, err) = Cli.Run("delete", id, "no-such-run-" + Guid.NewGuid().ToString("N"));
        Assert.Equal(2, exit);
        Assert.Contains("no run 'no-such-run-", err);
        Assert.Contains("nothing deleted", err);
        Assert.Equal(before, Rows(id));
        Assert.Equal(2, Cli.Run("delete").Exit); // no run named
        (exit, _, err) = Cli.Run("delete", id + "/mm-vmm");
        Assert.Equal(2, exit);
        Assert.Contains("is not a run id", err);
        Assert.Equal(before, Rows(id));
        Assert.Equal(0, Cli.Run("delete", id).Exit);
    }

    [Fact]
    public async Task A_run_being_written_can_be_neither_deleted_nor_resumed_a_second_time_and_its_export_and_replay_say_they_have_it_so_far()
    {
        var id = $"busy-{Guid.NewGuid():N}"[..17];
        using var p = Cli.Start(null, "run", "--duration", "60s", "--vms", "1", "--vcpus", "1", "--run-id", id);
        while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains("t=")) { }
        var before = Rows(id);
        Assert.Equal("running", CrashRecoveryTests.Status(id));
        var (exit, output, err) = Cli.Run("delete", id);
        Assert.True(exit == 2, output + err);
        Assert.Contains($"run '{id}' is being written by a running actorsim (nothing deleted", err);
        (exit, output, err) = Cli.Run("run", "--resume", id, "--rounds", "3");
        Assert.True(exit == 2, output + err);
        Assert.Contains($"run '{id}' is being written by another actorsim", err);
        Assert.True(Rows(id)["events"] >= before["events"]); // nothing taken
        // Read as it is written, export and replay give the run so far, and say so (it looked whole).
        var log = Path.Combine(Path.GetTempPath(), $"{id}.jsonl");
        const string SoFar = "is being written by a running actorsim";
        try
        {
            (exit, output, err) = Cli.Run("export", "--run", id, "-o", log);
            Assert.True(exit == 0, output + err);
            Assert.Contains($"actorsim export: run '{id}' {SoFar}: the file holds the events it had so far", err);
            (exit, output, err) = Cli.Run("replay", "--run", id, "--verify");
            Assert.True(exit == 0, output + err);
            Assert.Contains($"actorsim replay: run '{id}' {SoFar}: replayed the events it had so far", err);
            // Stopped (SIGTERM drains), the run lets its lock go: then it can be deleted.
            using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, p.ExitCode);
            Assert.Equal("ended", CrashRecoveryTests.Status(id));
            (exit, output, err) = Cli.Run("export", "--run", id, "-o", log);
            Assert.True(exit == 0 && !err.Contains(SoFar), output + err);
            (exit, output, err) = Cli.Run("replay", "--run", id);
            Assert.True(exit == 0 && !err.Contains(SoFar), output + err);
        }
        finally { File.Delete(log); }
        (exit, output, err) = Cli.Run("delete", id);
        Assert.True(exit == 0, output + err);
    }

    [Fact]
    public async Task A_run_whose_lock_the_database_dropped_takes_it_again_and_still_cannot_be_deleted()
    {
        var id = $"relock-{Guid.NewGuid():N}"[..19];
        using var p = Cli.Start(null, "run", "--duration", "8s", "--vms", "1", "--vcpus", "1", "--run-id", id);
        while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains("t=")) { }
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync();
        await DropLockAndSeeItTakenAgainAsync(conn, id);
        var (exit, output, err) = Cli.Run("delete", id);
        Assert.True(exit == 2, output + err);
        Assert.Contains("is being written by a running actorsim", err);
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(p.ExitCode == 0, await stderr);
        Assert.Equal("ended", CrashRecoveryTests.Status(id));
    }

    /// <summary>A scenario keeps its lock as run does: dropped by the database (its session ended), it is
    /// taken again, and the scenario goes on to its end (before, it went on without one: `runs` said
    /// stopped and `delete` would have taken its run from under it).</summary>
    [Fact]
    public async Task A_scenario_whose_lock_the_database_dropped_takes_it_again()
    {
        var (p, id, stdout, stderr) = await LongScenarioUnderWayAsync();
        using var _ = p;
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync();
        await DropLockAndSeeItTakenAgainAsync(conn, id);
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(p.ExitCode == 0, await stdout + await stderr);
        Assert.Contains("passed: 3000 of 3000 expectations", await stdout);
        Assert.Equal("ended", CrashRecoveryTests.Status(id));
    }

    /// <summary>... and stops (exit 3) when another session took it meanwhile, as run does.</summary>
    [Fact]
    public async Task A_scenario_whose_lock_another_session_took_stops_with_exit_3()
    {
        var (p, id, stdout, stderr) = await LongScenarioUnderWayAsync();
        using var _ = p;
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync();
        await TakeLockAsync(conn, id);
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var err = await stderr;
        Assert.True(p.ExitCode == 3, await stdout + err);
        Assert.Contains($"actorsim scenario: run '{id}': the database dropped its lock, and another session (backend pid {conn.ProcessID}) took it meanwhile (a second writer of the run): stopping", err);
        Assert.DoesNotContain("passed: 3000 of 3000", await stdout);
    }

    /// <summary>A 3,000-step scenario started on the database, once its first expectation has passed: the
    /// process, its run id, and the rest of its stdout and stderr as they will be read.</summary>
    private static async Task<(System.Diagnostics.Process P, string Id, Task<string> Stdout, Task<string> Stderr)> LongScenarioUnderWayAsync()
    {
        var p = Cli.Start(null, "scenario", Cli.LongScenario(3000));
        string? id = null;
        while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains("pass step"))
            if (line.StartsWith("run: ")) id = line[5..].Split(' ')[0];
        Assert.NotNull(id);
        return (p, id, p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync());
    }

    /// <summary>Ends the session holding the run's lock, as a database restart would, and waits (5 s at
    /// most) for the writer to hold it on a new one.</summary>
    private static async Task DropLockAndSeeItTakenAgainAsync(NpgsqlConnection conn, string id)
    {
        var first = (await RunLockProbe.HolderAsync(conn, id))!.Value;
        await RunLockProbe.TerminateAsync(conn, first);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (await RunLockProbe.HolderAsync(conn, id) is not { } again || again == first)
        {
            Assert.True(DateTime.UtcNow < until, $"the writer of run '{id}' did not take its lock again");
            await Task.Delay(50);
        }
    }

    /// <summary>Takes a run's lock on <paramref name="conn"/>, ending the session that holds it (again if
    /// the writer took it back first), as a second writer would once the database dropped the first's.</summary>
    private static async Task TakeLockAsync(NpgsqlConnection conn, string id)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (await RunLockProbe.HolderAsync(conn, id) is { } holder && holder != conn.ProcessID) await RunLockProbe.TerminateAsync(conn, holder);
            await using var take = new NpgsqlCommand("select pg_try_advisory_lock(1095985517, hashtext(@run))", conn);
            take.Parameters.AddWithValue("run", id);
            if ((bool)(await take.ExecuteScalarAsync())!) return;
            Assert.True(DateTime.UtcNow < until, "the test could not take the run's lock");
        }
    }

    [Fact]
    public async Task A_run_whose_lock_another_session_took_after_the_database_dropped_it_stops_with_exit_3()
    {
        var id = $"lostlock-{Guid.NewGuid():N}"[..21];
        var metrics = Path.Combine(Path.GetTempPath(), $"{id}.jsonl");
        using var p = Cli.Start(null, "run", "--duration", "60s", "--vms", "1", "--vcpus", "1", "--run-id", id, "--metrics", metrics);
        while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains("t=")) { }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync();
        await TakeLockAsync(conn, id); // a second writer, while the run has none
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)); // well before its 60 s
        var err = await stderr;
        Assert.True(p.ExitCode == 3, await stdout + err);
        Assert.Contains($"actorsim: run '{id}': the database dropped its lock, and another session (backend pid {conn.ProcessID}) took it meanwhile (a second writer of the run): stopping", err);
        using var last = System.Text.Json.JsonDocument.Parse(File.ReadLines(metrics).Last());
        Assert.True(last.RootElement.GetProperty("final").GetBoolean());
        File.Delete(metrics);
    }

    [Fact]
    public async Task Older_than_selects_the_runs_started_before_now_minus_the_age()
    {
        var old = $"old-{Guid.NewGuid():N}"[..16];
        var recent = $"new-{Guid.NewGuid():N}"[..16];
        foreach (var id in new[] { old, recent })
        {
            var (e, o, x) = Cli.Run("run", "--rounds", "3", "--vms", "1", "--vcpus", "1", "--run-id", id);
            Assert.True(e == 0, o + x);
        }
        await BackdateAsync(old);
        var (exit, output, err) = Cli.Run("delete", "--older-than", "9000d", "--dry-run"); // before early 2002
        Assert.True(exit == 0, output + err);
        Assert.Contains($"would delete run {old}", output);
        Assert.DoesNotContain(recent, output);
        Assert.True(Rows(old)["events"] > 0); // a dry run deletes nothing
        Assert.Equal(2, Cli.Run("delete", old, "--older-than", "1d").Exit); // one or the other
        Assert.Equal(2, Cli.Run("delete", "--older-than", "soon").Exit);
        Assert.Equal(0, Cli.Run("delete", old, recent).Exit);
    }

    /// <summary>Marks a run as started in 1999, for --older-than.</summary>
    private static async Task BackdateAsync(string run)
    {
        var store = ActorSim.Persistence.MartenStores.Get(Db);
        await using var session = store.LightweightSession();
        var info = (await session.LoadAsync<ActorSim.Persistence.ReadSide.RunInfo>(run))!;
        info.Started = new DateTimeOffset(1999, 12, 31, 0, 0, 0, TimeSpan.Zero);
        session.Store(info);
        await session.SaveChangesAsync();
    }

    [Fact]
    public async Task Older_than_skips_a_run_being_written_and_deletes_the_others()
    {
        var old = $"old-{Guid.NewGuid():N}"[..16];
        var busy = $"busy-{Guid.NewGuid():N}"[..17];
        var (e, o, x) = Cli.Run("run", "--rounds", "3", "--vms", "1", "--vcpus", "1", "--run-id", old);
        Assert.True(e == 0, o + x);
        using var p = Cli.Start(null, "run", "--duration", "60s", "--vms", "1", "--vcpus", "1", "--run-id", busy);
        while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains("t=")) { }
        await BackdateAsync(old);
        await BackdateAsync(busy); // a long-running host started before the age
        var (exit, output, err) = Cli.Run("delete", "--older-than", "9000d", "--dry-run");
        Assert.True(exit == 0, output + err);
        Assert.Contains($"would delete run {old}\n", output);
        Assert.Contains($"would skip run {busy}: it is being written by a running actorsim\n", output);
        (exit, output, err) = Cli.Run("delete", busy, "--dry-run"); // named, it is refused, as the delete would be
        Assert.True(exit == 2, output + err);
        Assert.Contains($"run '{busy}' is being written by a running actorsim (nothing would be deleted", err);
        (exit, output, err) = Cli.Run("delete", "--older-than", "9000d");
        Assert.True(exit == 0, output + err);
        Assert.Contains($"deleted run {old}:", output);
        Assert.Contains($"skipped run {busy}: it is being written by a running actorsim\n", output);
        Assert.Equal(0, Rows(old)["run record"]);
        Assert.True(Rows(busy)["events"] > 0);
        using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, p.ExitCode);
        Assert.Equal(0, Cli.Run("delete", busy).Exit);
    }
}
