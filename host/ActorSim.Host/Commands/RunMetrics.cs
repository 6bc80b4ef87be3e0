using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using ActorSim.Domain.Kvm;
using ActorSim.Persistence.EventLog;
using ActorSim.Persistence.Journal;

namespace ActorSim.Host.Commands;

/// <summary>One reading of a running simulation: the progress line's figures (cumulative since the
/// process started the run), the journal writer's (<see cref="JournalStats"/>; null in memory) and the
/// process's. <see cref="Take"/> reads the process's own.</summary>
public sealed record MetricsSample(
    TimeSpan Elapsed, long Accesses, IReadOnlyDictionary<FaultResult, long> Outcomes, long EventsPersisted, int InvariantViolations,
    string Database, JournalStats? Journal, long RssBytes, long GcHeapBytes, TimeSpan GcPause, int[] GcCollections, TimeSpan Cpu)
{
    /// <summary>The accesses' latency since the reading before (<see cref="ActorSim.Actors.SeededWorkload.Counted"/>).</summary>
    public ActorSim.Actors.AccessLatency? Latency { get; init; }

    /// <summary>The accesses' latency since the run started in this process.</summary>
    public ActorSim.Actors.AccessLatency? TotalLatency { get; init; }

    /// <summary>The process's figures now, with the simulation's given (<paramref name="outcomes"/>: a
    /// copy the sample keeps).</summary>
    public static MetricsSample Take(TimeSpan elapsed, long accesses, IReadOnlyDictionary<FaultResult, long> outcomes, long events, int violations,
        string database, JournalStats? journal) =>
        new(elapsed, accesses, outcomes, events, violations, database, journal,
            Environment.WorkingSet, GC.GetGCMemoryInfo().HeapSizeBytes, GC.GetTotalPauseDuration(),
            [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)], Environment.CpuUsage.TotalTime);
}

/// <summary>What <c>actorsim run</c> tells a watcher while it runs, from the sample it takes each second
/// (the progress line's tick) and once at the end:
/// <list type="bullet">
/// <item><c>--metrics FILE</c>: a JSON object a line (JSON Lines), flushed as written so <c>tail -f</c>
/// follows it; figures per interval (rates, access latency, GC pause share, CPU cores, the journal's mean commit) are
/// since the line before; the last line has <c>"final": true</c> and the summary's figures, its
/// interval the whole run.</item>
/// <item>the <c>ActorSim</c> <see cref="Meter"/>, observable instruments reading the newest sample, so
/// <c>dotnet-counters monitor -p PID --counters ActorSim</c> (or any MeterListener, OpenTelemetry)
/// sees a run without a file. The runtime's own <c>System.Runtime</c> meter covers the process.</item>
/// </list></summary>
public sealed class RunMetrics : IDisposable
{
    public const string MeterName = "ActorSim";

    private readonly string _runId;
    private readonly Meter _meter;
    private StreamWriter? _file;
    private MetricsSample? _last, _baseline;

    /// <param name="file">Where the JSON Lines go (created or truncated), or null for the meter only.</param>
    public RunMetrics(string runId, string? file)
    {
        _runId = runId;
        // A descriptor's name (/dev/stdout) is written at the descriptor's offset, not from the file's start.
        _file = file is null ? null
            : new StreamWriter(SpecialFiles.OpenDescriptor(file) ?? new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        _meter = new Meter(MeterName);
        var run = new KeyValuePair<string, object?>("run", runId);
        _meter.CreateObservableCounter("actorsim.guest.accesses", () => Newest() is { } s
            ? s.Outcomes.Select(o => new Measurement<long>(o.Value, run, new KeyValuePair<string, object?>("outcome", o.Key.ToString())))
            : [], "{access}", "guest accesses answered, by outcome (FaultResult)");
        _meter.CreateObservableCounter("actorsim.events.persisted", () => One<long>(s => s.EventsPersisted), "{event}", "events the actors persisted");
        _meter.CreateObservableGauge("actorsim.invariant.violations", () => One<int>(s => s.InvariantViolations),
            "{violation}", "invariants (kernel-model.md section 7) the checker found violated");
        _meter.CreateObservableCounter("actorsim.journal.commits", () => One(s => s.Journal?.Commits), "{commit}", "the Marten journal's commits (none in memory)");
        _meter.CreateObservableGauge("actorsim.journal.commit.duration", () => One(s => s.Journal?.MeanCommit.TotalSeconds),
            "s", "the Marten journal's mean commit time since the run started");

        // The newest sample's figure, none before the first sample or where it has none (in memory).
        IEnumerable<Measurement<T>> One<T>(Func<MetricsSample, T?> figure) where T : struct =>
            Newest() is { } s && figure(s) is { } v ? [new Measurement<T>(v, run)] : [];
    }

    private MetricsSample? Newest() => Volatile.Read(ref _last);

    /// <summary>The reading the first interval is measured from (the run's start, after its set-up):
    /// published to the meter, not written.</summary>
    public void Baseline(MetricsSample sample)
    {
        _baseline = sample;
        Volatile.Write(ref _last, sample);
    }

    /// <summary>Why the file stopped being written (a disk that filled, say), or null. The run goes on.</summary>
    public string? Error { get; private set; }

    /// <summary>The file is a pipe whose reader has gone (`run --metrics /dev/stdout | head -1`).</summary>
    public bool BrokenPipe { get; private set; }

    /// <summary>Publishes a sample to the meter and writes its line; the final line's interval is the
    /// whole run (from the baseline), as the summary's figures are. A write that fails stops the writing
    /// (<see cref="Error"/>); the meter goes on.</summary>
    public void Publish(MetricsSample sample, bool final = false)
    {
        var previous = final ? _baseline : Newest();
        Volatile.Write(ref _last, sample);
        if (_file is null) return;
        try
        {
            _file.WriteLine(Line(_runId, DateTimeOffset.UtcNow, sample, previous, final));
            _file.Flush();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Error = e.Message;
            BrokenPipe = SpecialFiles.IsBrokenPipe(e);
            try
            {
                _file.Dispose();
            }
            catch (IOException)
            {
                // what could not be flushed is lost with the file's last lines
            }
            _file = null;
        }
    }

    /// <summary>A sample as its JSON line; the interval's figures against <paramref name="previous"/>
    /// (zero when null).</summary>
    public static string Line(string runId, DateTimeOffset time, MetricsSample s, MetricsSample? previous, bool final)
    {
        var seconds = Math.Max(0.001, (s.Elapsed - (previous?.Elapsed ?? TimeSpan.Zero)).TotalSeconds);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("time", time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("run", runId);
            w.WriteNumber("elapsed_s", Math.Round(s.Elapsed.TotalSeconds, 3));
            w.WriteNumber("accesses", s.Accesses);
            w.WriteNumber("accesses_per_s", Math.Round((s.Accesses - (previous?.Accesses ?? 0)) / seconds, 1));
            w.WriteStartObject("outcomes");
            foreach (var r in Enum.GetValues<FaultResult>())
                if (s.Outcomes.TryGetValue(r, out var n)) w.WriteNumber(r.ToString(), n);
            w.WriteEndObject();
            w.WriteNumber("events_persisted", s.EventsPersisted);
            w.WriteNumber("invariant_violations", s.InvariantViolations);
            // The interval's accesses' latency (the final line's: the whole run's); null when none was answered.
            if ((final ? s.TotalLatency : s.Latency) is { Count: > 0 } latency)
            {
                w.WriteStartObject("latency_us");
                w.WriteNumber("accesses", latency.Count);
                w.WriteNumber("p50", Math.Round(latency.P50Us, 1));
                w.WriteNumber("p99", Math.Round(latency.P99Us, 1));
                w.WriteNumber("max", Math.Round(latency.MaxUs, 1));
                w.WriteEndObject();
            }
            else w.WriteNull("latency_us");
            w.WriteString("database", s.Database);
            if (s.Journal is { } j)
            {
                var p = previous?.Journal;
                var commits = j.Commits - (p?.Commits ?? 0);
                w.WriteStartObject("journal");
                w.WriteNumber("commits", j.Commits);
                w.WriteNumber("events", j.Events);
                // Over the interval: what the writer did since the line before.
                w.WriteNumber("commits_per_s", Math.Round(commits / seconds, 1));
                w.WriteNumber("mean_commit_ms", commits == 0 ? 0 : Math.Round((j.InCommits - (p?.InCommits ?? TimeSpan.Zero)).TotalMilliseconds / commits, 3));
                w.WriteNumber("events_per_commit", commits == 0 ? 0 : Math.Round((double)(j.Events - (p?.Events ?? 0)) / commits, 1));
                w.WriteEndObject();
            }
            else w.WriteNull("journal");
            w.WriteNumber("rss_bytes", s.RssBytes);
            w.WriteNumber("gc_heap_bytes", s.GcHeapBytes);
            w.WriteNumber("gc_pause_share", Math.Round((s.GcPause - (previous?.GcPause ?? TimeSpan.Zero)).TotalSeconds / seconds, 4));
            w.WriteStartArray("gc_collections");
            foreach (var c in s.GcCollections) w.WriteNumberValue(c);
            w.WriteEndArray();
            w.WriteNumber("cpu_cores", Math.Round((s.Cpu - (previous?.Cpu ?? TimeSpan.Zero)).TotalSeconds / seconds, 3));
            w.WriteBoolean("final", final);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public void Dispose()
    {
        _meter.Dispose();
        _file?.Dispose();
    }
}
