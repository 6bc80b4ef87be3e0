using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using static ActorSim.Host.Tests.EndToEndTests;

namespace ActorSim.Host.Tests;

/// <summary>kill -9 in the middle of a run, then --resume: nothing acknowledged is lost, the log has no
/// gap or duplicate, every decision verifies and the invariants hold.</summary>
public class CrashRecoveryTests
{
    /// <summary>A run's status as <c>actorsim runs --json</c> gives it.</summary>
    internal static string? Status(string run)
    {
        var (exit, output, err) = Actorsim("runs", "--json");
        Assert.True(exit == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.EnumerateArray().Single(r => r.GetProperty("id").GetString() == run).GetProperty("status").GetString();
    }

    [Fact]
    public async Task A_run_killed_with_SIGKILL_resumes_with_every_acknowledged_decision_in_the_log()
    {
        Assert.False(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ACTORSIM_DB")), "ACTORSIM_DB is not set");
        using var p = Cli.Start(null, "run", "--duration", "120s", "--seed", "21", "--vms", "2", "--vcpus", "4");
        string? runId = null;
        string? lastProgress = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            var line = await p.StandardOutput.ReadLineAsync();
            if (line is null) Assert.Fail($"actorsim run ended early (exit {(p.WaitForExit(5000) ? p.ExitCode : -1)}): {await p.StandardError.ReadToEndAsync()}");
            if (line.StartsWith("run: ")) runId = line[5..].Trim();
            if (line.Contains(" accesses=")) lastProgress = line;
            if (lastProgress is not null && Regex.Match(lastProgress, "t=\\s*(\\d+)s").Groups[1].Value is var t && int.Parse(t) >= 3) break;
        }
        Assert.NotNull(runId);
        Assert.NotNull(lastProgress);
        p.Kill(entireProcessTree: true); // SIGKILL: no drain, batches in flight are lost unacknowledged
        await p.WaitForExitAsync();

        // Faults acknowledged before the kill (every outcome but "no fault at all") must be decisions in the log.
        long Count(string result) => Regex.Match(lastProgress!, $"\\b{result}=(\\d+)") is { Success: true } m ? long.Parse(m.Groups[1].Value) : 0;
        var acknowledged = Count("Mapped") + Count("Retry") + Count("GuestAbort") + Count("MmioExit") + Count("Error");

        Assert.Equal("stopped", Status(runId)); // no end recorded, nobody writing it
        var resumed = Actorsim("run", "--resume", runId, "--duration", "2s");
        Assert.True(resumed.Exit == 0, resumed.Out + resumed.Err);
        Assert.Contains("invariants: hold", resumed.Out);
        Assert.Equal("ended", Status(runId));

        var file = Path.Combine(Path.GetTempPath(), $"{runId}.jsonl");
        Assert.Equal(0, Actorsim("export", "--run", runId, "-o", file).Exit);
        // import validates seq and per-stream versions: no gap, no duplicate
        var check = Actorsim("import", file, "--as", runId + "-check");
        Assert.True(check.Exit == 0, check.Err);
        var verify = Actorsim("replay", "--file", file, "--verify");
        Assert.True(verify.Exit == 0, verify.Out);

        var decided = 0L;
        foreach (var d in Cli.Decisions(file))
        {
            var r = d.GetProperty("outcome").GetProperty("result").GetString();
            if (r is "Mapped" or "Retry" or "GuestAbort" or "MmioExit" or "Error") decided++;
        }
        Assert.True(decided >= acknowledged, $"{acknowledged} acknowledged before the kill, {decided} in the log");
    }

    /// <summary>SIGTERM drains, whenever it comes: during the start and set-up (right after "run: ID")
    /// or while rounds run. The process exits 0 with a summary, and its log is whole (no gap, every
    /// decision verifies).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_run_stopped_with_SIGTERM_drains_exits_0_and_its_log_verifies(bool whileRoundsRun)
    {
        Assert.False(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ACTORSIM_DB")), "ACTORSIM_DB is not set");
        using var p = Cli.Start(null, "run", "--duration", "120s", "--seed", "23", "--vms", "2", "--vcpus", "3");
        var stderr = p.StandardError.ReadToEndAsync();
        string? runId = null;
        var output = new List<string>();
        while (await p.StandardOutput.ReadLineAsync() is { } line)
        {
            output.Add(line);
            if (line.StartsWith("run: ")) runId = line[5..].Trim();
            if (runId is not null && (!whileRoundsRun || line.Contains(" accesses="))) break;
        }
        if (runId is null) Assert.Fail(string.Join('\n', output) + await stderr); // stderr ends only when the process does
        using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
        output.AddRange((await p.StandardOutput.ReadToEndAsync()).Split('\n'));
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var all = string.Join('\n', output);
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {all} {await stderr}");
        Assert.Contains($"summary: run {runId} (stopped early, drained)", all);
        Assert.Contains("invariants: hold", all);

        var file = Path.Combine(Path.GetTempPath(), $"{runId}.jsonl");
        Assert.Equal(0, Actorsim("export", "--run", runId, "-o", file).Exit);
        var check = Actorsim("import", file, "--as", runId + "-check"); // seq and versions: no gap, no repeat
        Assert.True(check.Exit == 0, check.Err);
        var verify = Actorsim("replay", "--file", file, "--verify");
        Assert.True(verify.Exit == 0, verify.Out + verify.Err);
        File.Delete(file);
    }

    /// <summary>A hang-up (SIGHUP: the terminal closed) ends a run at once (129), as a second SIGTERM does,
    /// and its --export's part file goes with it (it was left behind).</summary>
    [Fact]
    public async Task A_hang_up_ends_a_run_at_once_and_leaves_no_part_file()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sighup-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        using var p = Cli.Start(null, "run", "--in-memory", "--duration", "120s", "--vms", "1", "--vcpus", "2", "--export", Path.Combine(dir, "log.jsonl"));
        try
        {
            var stderr = p.StandardError.ReadToEndAsync();
            while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains(" accesses=")) { }
            Assert.Single(Directory.GetFiles(dir, "*.part"));
            using (var kill = Process.Start("kill", ["-HUP", p.Id.ToString()])) await kill.WaitForExitAsync();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.True(p.ExitCode == 129, $"exit {p.ExitCode}: {await stderr}");
            Assert.Empty(Directory.GetFiles(dir));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
        Directory.Delete(dir, true);
    }

    /// <summary>A second SIGTERM stops at once (143), while the first drains: a round waiting on a database
    /// outage (the connection to it cut) is not waited out up to the outage limit, a minute (before, every
    /// signal after the first did nothing meanwhile). The run is left stopped, and its --export's part
    /// file is not left behind.</summary>
    [Fact]
    public async Task A_second_SIGTERM_stops_a_run_waiting_on_the_database_at_once()
    {
        Assert.False(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ACTORSIM_DB")), "ACTORSIM_DB is not set");
        var real = new Npgsql.NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable("ACTORSIM_DB"));
        using var proxy = new ActorSim.Tests.CuttableProxy(real.Port);
        var viaProxy = new Npgsql.NpgsqlConnectionStringBuilder(real.ConnectionString) { Port = proxy.Port }.ConnectionString;
        var id = $"sigterm2-{Guid.NewGuid():N}"[..21];
        var dir = Path.Combine(Path.GetTempPath(), id);
        Directory.CreateDirectory(dir);
        using var p = Cli.Start(new Dictionary<string, string?> { ["ACTORSIM_OUTAGE_LIMIT"] = "60s" },
            "run", "--duration", "120s", "--vms", "1", "--vcpus", "2", "--run-id", id, "--db", viaProxy, "--export", Path.Combine(dir, "log.jsonl"));
        try
        {
            var stderr = p.StandardError.ReadToEndAsync();
            var output = new List<string>();
            async Task ReadUntil(string text)
            {
                while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line)
                {
                    output.Add(line);
                    if (line.Contains(text)) return;
                }
                Assert.Fail($"no line with '{text}': {string.Join('\n', output)} {await stderr}");
            }
            async Task Term()
            {
                using var kill = Process.Start("kill", ["-TERM", p.Id.ToString()]);
                await kill.WaitForExitAsync();
            }
            await ReadUntil(" accesses=");
            proxy.Cut();
            await ReadUntil("database unreachable");
            await Term();
            await ReadUntil("stopping: the round in flight is finished and written first");
            await Term();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.True(p.ExitCode == 143, $"exit {p.ExitCode}: {string.Join('\n', output)} {await stderr}");
            Assert.Contains("actorsim run: stopped at once, without draining or recording the run's end", await stderr);
            Assert.Equal("stopped", Status(id));
            Assert.Empty(Directory.GetFiles(dir));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
        Directory.Delete(dir, true);
    }
}
