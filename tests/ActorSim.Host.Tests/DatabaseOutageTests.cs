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
        }
        finally
        {
            Pg("start --fast");
        }
    }
}
