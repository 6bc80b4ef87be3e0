using System.Diagnostics;
using System.Text.RegularExpressions;
using static ActorSim.Host.Tests.EndToEndTests;

namespace ActorSim.Host.Tests;

[CollectionDefinition("database outage", DisableParallelization = true)]
public class DatabaseOutageCollection;

/// <summary>PostgreSQL stopped under a running host (scripts/pg.sh stop / start): a short outage is
/// ridden out with nothing acknowledged lost; one past the limit exits 3. These stop the shared test
/// database, so they run alone.</summary>
[Collection("database outage")]
public class DatabaseOutageTests
{
    private static void Pg(string verb)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(Cli.Repo, "scripts", "pg.sh"));
        foreach (var a in verb.Split(' ')) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit(120_000);
        Assert.True(p.ExitCode == 0, $"pg.sh {verb}: {p.StandardError.ReadToEnd()}");
    }

    private static async Task<string> WaitForProgress(Process p, List<string> lines, int seconds)
    {
        string? runId = null;
        while (true)
        {
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line is null) Assert.Fail($"actorsim run ended early: {await p.StandardError.ReadToEndAsync()}");
            lines.Add(line);
            if (line.StartsWith("run: ")) runId = line[5..].Trim();
            if (Regex.Match(line, "t=\\s*(\\d+)s") is { Success: true } m && int.Parse(m.Groups[1].Value) >= seconds) return runId!;
        }
    }

    [Fact]
    public async Task A_10_second_outage_is_ridden_out_and_nothing_acknowledged_is_lost()
    {
        var lines = new List<string>();
        var metrics = Path.Combine(Path.GetTempPath(), $"outage-metrics-{Guid.NewGuid():N}.jsonl");
        using var p = Cli.Start(null, "run", "--duration", "25s", "--seed", "31", "--vms", "2", "--vcpus", "3", "--metrics", metrics);
        var runId = await WaitForProgress(p, lines, 2);
        Pg("stop");
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(10));
        }
        finally
        {
            Pg("start --fast");
        }
        var rest = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        var output = string.Join("\n", lines) + "\n" + rest;
        Assert.True(p.ExitCode == 0, output + await p.StandardError.ReadToEndAsync());
        Assert.Contains("database unreachable", output);
        Assert.Contains("database back", output);
        Assert.Contains("invariants: hold", output);
        // Progress goes on while the rounds wait on the database: a line a second, the outage named.
        var during = File.ReadLines(metrics).Where(l => l.Contains("\"database\":\"outage\"")).ToList();
        Assert.True(during.Count >= 5, $"{during.Count} metrics lines during the outage:\n{File.ReadAllText(metrics)}");
        Assert.True(Regex.Matches(output, "database=outage").Count >= 5, output);
        Assert.Contains("\"database\":\"up\"", File.ReadLines(metrics).Last());
        var verify = Actorsim("replay", "--run", runId, "--verify");
        Assert.True(verify.Exit == 0, verify.Out);
        var file = Path.Combine(Path.GetTempPath(), $"{runId}.jsonl");
        Assert.Equal(0, Actorsim("export", "--run", runId, "-o", file).Exit);
        Assert.Equal(0, Actorsim("import", file, "--as", runId + "-check").Exit); // no gap, no duplicate
    }

    /// <summary>Deterministic too: there the journal writes in its turn on the one thread every actor
    /// shares, so an outage holds all of them; the progress reports go on without their answers.</summary>
    /// <summary>A scenario rides out an outage up to the limit as run does: its steps' asks gave up at
    /// 30 s, inside the 60 s default, and it ended "the simulation stopped answering" (exit 3) with the
    /// database back before the limit. Here a 33 s outage under a 40 s limit, from the first expectation on.</summary>
    [Fact]
    public async Task A_scenario_rides_out_an_outage_longer_than_30_seconds_within_the_limit()
    {
        const int Pages = 3000;
        var file = Cli.LongScenario(Pages);
        using var p = Cli.Start(new Dictionary<string, string?> { ["ACTORSIM_OUTAGE_LIMIT"] = "40s" }, "scenario", file);
        var lines = new List<string>();
        while (true)
        {
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line is null) Assert.Fail($"actorsim scenario ended early: {string.Join("\n", lines)}\n{await p.StandardError.ReadToEndAsync()}");
            lines.Add(line);
            if (line.Contains("pass step")) break;
        }
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        Pg("stop");
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(33));
        }
        finally
        {
            Pg("start --fast");
        }
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        var output = string.Join("\n", lines) + "\n" + await stdout;
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}\n{output[^Math.Min(output.Length, 2000)..]}\n{await stderr}");
        Assert.Contains("database unreachable", output);
        Assert.Contains($"passed: {Pages} of {Pages} expectations", output);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_outage_past_the_limit_exits_3_with_the_address_and_no_password(bool deterministic)
    {
        var lines = new List<string>();
        var metrics = Path.Combine(Path.GetTempPath(), $"outage-metrics-{Guid.NewGuid():N}.jsonl");
        using var p = Cli.Start(new Dictionary<string, string?> { ["ACTORSIM_OUTAGE_LIMIT"] = "4s" }, ["run", "--duration", "120s", "--seed", "32", "--vms", "1", "--vcpus", "2",
            "--metrics", metrics, .. deterministic ? new[] { "--deterministic" } : []]);
        await WaitForProgress(p, lines, 1);
        Pg("stop");
        try
        {
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
            Assert.Equal(3, p.ExitCode);
            var err = await stderr;
            Assert.Contains("unreachable", err);
            Assert.Contains("127.0.0.1:54329", err);
            Assert.DoesNotContain("Password", err + await stdout, StringComparison.OrdinalIgnoreCase);
            // The metrics end with a final line that says why.
            var last = File.ReadLines(metrics).Last();
            Assert.True(last.Contains("\"database\":\"unavailable\"") && last.Contains("\"final\":true"), $"{last}\n{err}");
            Assert.DoesNotContain("Unhandled exception", err);
            // The actors' failed writes on a line each, on stderr, not with Npgsql's stack (AkkaConsoleLogger,
            // and AkkaStdoutLogger for those that come after the loggers stopped).
            var all = $"stderr:\n{err}\nstdout:\n{await stdout}";
            Assert.False(all.Contains("   at ", StringComparison.Ordinal), all);
            Assert.False((await stdout).Contains("[ERROR]", StringComparison.Ordinal), all);
        }
        finally
        {
            Pg("start --fast");
        }
    }

    /// <summary>A database that stops answering while a run starts (here: its set-up's first writes) is
    /// ridden out as in the rounds and stops the run at the limit with the same message (before: the start
    /// waited out its asks' timeout, the limit and 30 s — 35 s in all by hand — and ended "the simulation
    /// stopped answering"). Standing for a database that does not answer: mt_events locked by another
    /// session, so every write of an event times out (Command Timeout=1), while the rest still answers.
    /// The lock is taken once the run has printed its id: opening the store checks the schema, which reads
    /// mt_events too.</summary>
    [Fact]
    public async Task A_database_that_stops_answering_while_a_run_starts_stops_it_at_the_outage_limit()
    {
        var db = Environment.GetEnvironmentVariable("ACTORSIM_DB");
        Assert.False(string.IsNullOrEmpty(db), "ACTORSIM_DB is not set: run through scripts/test.sh");
        var impatient = new Npgsql.NpgsqlConnectionStringBuilder(db) { CommandTimeout = 1 }.ConnectionString;
        await using var locker = new Npgsql.NpgsqlConnection(db);
        await locker.OpenAsync();
        await using var tx = await locker.BeginTransactionAsync();
        var clock = Stopwatch.StartNew();
        using var p = Cli.Start(null, "run", "--rounds", "5", "--vms", "1", "--vcpus", "2", "--outage-limit", "3s", "--db", impatient);
        var lines = new List<string>();
        while (true)
        {
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line is null) Assert.Fail($"actorsim run ended before it began: {await p.StandardError.ReadToEndAsync()}");
            lines.Add(line);
            if (line.StartsWith("run: ")) break;
        }
        await using (var lockEvents = new Npgsql.NpgsqlCommand($"lock table {Persistence.MartenStores.DefaultSchema}.mt_events in access exclusive mode", locker, tx))
            await lockEvents.ExecuteNonQueryAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        var elapsed = clock.Elapsed;
        await tx.RollbackAsync();
        var output = string.Join("\n", lines) + "\n" + await stdout;
        var err = await stderr;
        Assert.True(p.ExitCode == 3, $"exit {p.ExitCode}\n{output}\n{err}");
        Assert.Contains("unreachable for", err);
        Assert.Contains("(limit 3s", err);
        Assert.DoesNotContain("stopped answering", err);
        Assert.DoesNotMatch("t=\\s*\\d+s", output); // stopped in its start, before any round's report
        Assert.True(elapsed < TimeSpan.FromSeconds(25), $"{elapsed.TotalSeconds:0.0} s to stop at a 3 s limit\n{output}\n{err}");
    }
}
