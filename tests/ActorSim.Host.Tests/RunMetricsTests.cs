using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ActorSim.Domain.Kvm;
using ActorSim.Host.Commands;
using ActorSim.Persistence.Journal;

namespace ActorSim.Host.Tests;

/// <summary><c>actorsim run --metrics FILE</c> and the <c>ActorSim</c> meter (<see cref="RunMetrics"/>).</summary>
public class RunMetricsTests
{
    private static List<JsonElement> Lines(string file) =>
        [.. File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    private static long Summary(string output, string pattern) =>
        long.Parse(Regex.Match(output, pattern).Groups[1].Value, CultureInfo.InvariantCulture);

    [Fact]
    public void A_run_in_memory_writes_a_line_a_second_and_a_final_line_with_the_summarys_figures()
    {
        var file = Path.Combine(Path.GetTempPath(), $"metrics-{Guid.NewGuid():N}.jsonl");
        var (exit, output, err) = Cli.Run("run", "--in-memory", "--duration", "3s", "--seed", "5", "--metrics", file);
        Assert.True(exit == 0, output + err);
        var lines = Lines(file);
        Assert.True(lines.Count >= 3, $"{lines.Count} lines:\n{File.ReadAllText(file)}"); // t=1s, t=2s, the final one
        Assert.All(lines[..^1], l => Assert.False(l.GetProperty("final").GetBoolean()));
        var final = lines[^1];
        Assert.True(final.GetProperty("final").GetBoolean());
        double elapsed = 0;
        long accesses = 0;
        foreach (var l in lines)
        {
            Assert.True(l.GetProperty("elapsed_s").GetDouble() > elapsed);
            Assert.True(l.GetProperty("accesses").GetInt64() >= accesses);
            (elapsed, accesses) = (l.GetProperty("elapsed_s").GetDouble(), l.GetProperty("accesses").GetInt64());
            Assert.Equal(accesses, l.GetProperty("outcomes").EnumerateObject().Sum(o => o.Value.GetInt64())); // every access has one outcome
            Assert.Equal("in-memory", l.GetProperty("database").GetString());
            Assert.Equal(JsonValueKind.Null, l.GetProperty("journal").ValueKind);
            Assert.True(l.GetProperty("rss_bytes").GetInt64() > 10_000_000);
            Assert.Equal(3, l.GetProperty("gc_collections").GetArrayLength());
            Assert.Equal(0, l.GetProperty("invariant_violations").GetInt32());
            Assert.True(DateTimeOffset.TryParse(l.GetProperty("time").GetString(), CultureInfo.InvariantCulture, out _));
        }
        // Each answered access has its latency, counted in the interval it was answered in (the final
        // line: all of them).
        long before = 0;
        foreach (var l in lines)
        {
            var answered = l.GetProperty("accesses").GetInt64() - (l.GetProperty("final").GetBoolean() ? 0 : before);
            var latency = l.GetProperty("latency_us");
            if (answered == 0) Assert.Equal(JsonValueKind.Null, latency.ValueKind);
            else
            {
                Assert.Equal(answered, latency.GetProperty("accesses").GetInt64());
                Assert.InRange(latency.GetProperty("p50").GetDouble(), 0.001, latency.GetProperty("p99").GetDouble());
                Assert.True(latency.GetProperty("p99").GetDouble() <= latency.GetProperty("max").GetDouble(), l.ToString());
            }
            before = l.GetProperty("accesses").GetInt64();
        }
        // The final line is the summary: its totals, and its rate over the whole run.
        Assert.Equal(Summary(output, @"(\d+) guest accesses in"), final.GetProperty("accesses").GetInt64());
        Assert.Equal(Summary(output, @"(\d+) events persisted"), final.GetProperty("events_persisted").GetInt64());
        Assert.Equal(Summary(output, @"\((\d+)/s\)"), final.GetProperty("accesses_per_s").GetDouble(), 1.0);
        Assert.Contains($"Mapped={final.GetProperty("outcomes").GetProperty("Mapped").GetInt64()} ", output[output.IndexOf("outcomes:")..]);
        // A progress line and the metrics line of the same second agree.
        var first = lines[0];
        Assert.Contains($"accesses={first.GetProperty("accesses").GetInt64()} ", output);
    }

    [Fact]
    public void A_run_on_the_database_reports_the_journals_commits()
    {
        Assert.False(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ACTORSIM_DB")), "ACTORSIM_DB is not set: run through scripts/test.sh");
        var file = Path.Combine(Path.GetTempPath(), $"metrics-{Guid.NewGuid():N}.jsonl");
        var (exit, output, err) = Cli.Run("run", "--duration", "2s", "--seed", "6", "--vms", "1", "--vcpus", "2", "--metrics", file);
        Assert.True(exit == 0, output + err);
        var final = Lines(file)[^1];
        Assert.Equal("up", final.GetProperty("database").GetString());
        var journal = final.GetProperty("journal");
        Assert.True(journal.GetProperty("commits").GetInt64() > 0, final.ToString());
        Assert.True(journal.GetProperty("events").GetInt64() >= journal.GetProperty("commits").GetInt64());
        Assert.True(journal.GetProperty("mean_commit_ms").GetDouble() > 0);
        Assert.True(journal.GetProperty("events_per_commit").GetDouble() >= 1);
    }

    [Fact]
    public void A_metrics_file_that_cannot_be_written_is_refused_before_the_run()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-dir-{Guid.NewGuid():N}", "m.jsonl");
        var (exit, output, err) = Cli.Run("run", "--in-memory", "--rounds", "3", "--metrics", missing);
        Assert.Equal(2, exit);
        Assert.Contains("--metrics", err);
        Assert.Contains("no such directory", err);
        Assert.DoesNotContain("run: ", output); // nothing ran
        (exit, _, err) = Cli.Run("run", "--scenario", Path.Combine(Cli.Repo, "scenarios", "o05-ram-is-normal.yaml"), "--in-memory", "--metrics", "m.jsonl");
        Assert.Equal(2, exit);
        Assert.Contains("--metrics does not apply to --scenario", err);
    }

    [Fact]
    public void A_metrics_file_that_cannot_take_more_is_reported_at_the_end_and_the_run_completes()
    {
        // /dev/full: every write fails with ENOSPC, as a disk that filled under a long run would.
        Assert.True(File.Exists("/dev/full"), "this test needs Linux's /dev/full");
        var (exit, output, err) = Cli.Run("run", "--in-memory", "--duration", "2s", "--metrics", "/dev/full");
        Assert.True(exit == 2, output + err);
        Assert.Contains("--metrics /dev/full: cannot write:", err);
        Assert.Contains("invariants: hold", output); // the run went on to its summary
        Assert.DoesNotContain("   at ", err); // no stack trace
    }

    private static MetricsSample Sample(double seconds, long mapped, long retry, long events, JournalStats? journal, TimeSpan gcPause, TimeSpan cpu) =>
        new(TimeSpan.FromSeconds(seconds), mapped + retry, new Dictionary<FaultResult, long> { [FaultResult.Mapped] = mapped, [FaultResult.Retry] = retry },
            events, 0, journal is null ? "in-memory" : "up", journal, 100_000_000, 5_000_000, gcPause, [3, 2, 1], cpu);

    [Fact]
    public void A_lines_interval_figures_are_since_the_line_before()
    {
        var before = Sample(1, 900, 100, 500, new JournalStats(100, 100, 400, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1)), TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1));
        var now = Sample(3, 2_900, 100, 1_500, new JournalStats(300, 300, 1_400, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3)), TimeSpan.FromMilliseconds(110), TimeSpan.FromSeconds(4));
        using var doc = JsonDocument.Parse(RunMetrics.Line("r1", DateTimeOffset.UnixEpoch, now, before, final: false));
        var l = doc.RootElement;
        Assert.Equal("1970-01-01T00:00:00.000Z", l.GetProperty("time").GetString());
        Assert.Equal("r1", l.GetProperty("run").GetString());
        Assert.Equal(3_000, l.GetProperty("accesses").GetInt64());
        Assert.Equal(1_000.0, l.GetProperty("accesses_per_s").GetDouble()); // 2,000 more in 2 s
        Assert.Equal(2_900, l.GetProperty("outcomes").GetProperty("Mapped").GetInt64());
        Assert.Equal(0.05, l.GetProperty("gc_pause_share").GetDouble(), 6); // 100 ms paused in 2 s
        Assert.Equal(1.5, l.GetProperty("cpu_cores").GetDouble(), 6); // 3 s of CPU in 2 s
        var j = l.GetProperty("journal");
        Assert.Equal(300, j.GetProperty("commits").GetInt64());
        Assert.Equal(100.0, j.GetProperty("commits_per_s").GetDouble()); // 200 commits in 2 s
        Assert.Equal(1.0, j.GetProperty("mean_commit_ms").GetDouble(), 6); // 200 ms in 200 commits
        Assert.Equal(5.0, j.GetProperty("events_per_commit").GetDouble(), 6); // 1,000 events in 200 commits
        Assert.False(l.GetProperty("final").GetBoolean());
        Assert.Equal(JsonValueKind.Null, l.GetProperty("latency_us").ValueKind); // none given

        // Latency: the interval's on a line, the whole run's on the final line.
        var timed = now with { Latency = new ActorSim.Actors.AccessLatency(2_000, 30.04, 120, 900), TotalLatency = new ActorSim.Actors.AccessLatency(3_000, 28, 110, 950) };
        using var line = JsonDocument.Parse(RunMetrics.Line("r1", DateTimeOffset.UnixEpoch, timed, before, final: false));
        var latency = line.RootElement.GetProperty("latency_us");
        Assert.Equal((2_000L, 30.0, 120.0, 900.0), (latency.GetProperty("accesses").GetInt64(), latency.GetProperty("p50").GetDouble(), latency.GetProperty("p99").GetDouble(), latency.GetProperty("max").GetDouble()));
        using var last = JsonDocument.Parse(RunMetrics.Line("r1", DateTimeOffset.UnixEpoch, timed, null, final: true));
        Assert.Equal(3_000, last.RootElement.GetProperty("latency_us").GetProperty("accesses").GetInt64());
    }

    [Fact]
    public void The_meter_reports_the_newest_sample_by_outcome_and_nothing_before_the_first()
    {
        using var metrics = new RunMetrics("r2", file: null);
        var seen = new Dictionary<string, double>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (i, l) => { if (i.Meter.Name == RunMetrics.MeterName) l.EnableMeasurementEvents(i); },
        };
        void Record<T>(Instrument i, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state) where T : struct
        {
            string? run = null, outcome = null;
            foreach (var t in tags)
                if (t.Key == "run") run = (string?)t.Value;
                else if (t.Key == "outcome") outcome = (string?)t.Value;
            if (run != "r2") return; // another test's meter
            seen[outcome is null ? i.Name : $"{i.Name}/{outcome}"] = Convert.ToDouble(value, CultureInfo.InvariantCulture);
        }
        listener.SetMeasurementEventCallback<long>(Record);
        listener.SetMeasurementEventCallback<int>(Record);
        listener.SetMeasurementEventCallback<double>(Record);
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Empty(seen);

        metrics.Publish(Sample(2, 70, 5, 40, null, TimeSpan.Zero, TimeSpan.Zero));
        listener.RecordObservableInstruments();
        Assert.Equal(70, seen["actorsim.guest.accesses/Mapped"]);
        Assert.Equal(5, seen["actorsim.guest.accesses/Retry"]);
        Assert.Equal(40, seen["actorsim.events.persisted"]);
        Assert.Equal(0, seen["actorsim.invariant.violations"]);
        Assert.False(seen.ContainsKey("actorsim.journal.commits")); // in memory: no journal figures

        metrics.Publish(Sample(3, 90, 5, 60, new JournalStats(8, 8, 60, TimeSpan.FromMilliseconds(4), TimeSpan.FromSeconds(1)), TimeSpan.Zero, TimeSpan.Zero));
        listener.RecordObservableInstruments();
        Assert.Equal(90, seen["actorsim.guest.accesses/Mapped"]);
        Assert.Equal(60, seen["actorsim.events.persisted"]);
        Assert.Equal(8, seen["actorsim.journal.commits"]);
        Assert.Equal(0.0005, seen["actorsim.journal.commit.duration"], 9);
    }
}
