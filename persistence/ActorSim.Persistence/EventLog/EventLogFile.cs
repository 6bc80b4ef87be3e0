using System.Globalization;
using System.Text;
using System.Text.Json;
using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Persistence.ReadSide;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.EventLog;

/// <summary>A bad event-log file: where (file:line) and which field.</summary>
public sealed class EventLogFormatException(string file, int line, string field, string message)
    : Exception($"{file}:{line}: {field}: {message}")
{
    public int Line { get; } = line;
    public string Field { get; } = field;
}

/// <summary>A stored event of a run that cannot be read (a damaged record, or one written by a newer
/// build): which stream and version, and why.</summary>
public sealed class StoredEventException(string stream, long version, string message, Exception inner)
    : Exception($"stream {stream} version {version}: {message}", inner)
{
    public string Stream { get; } = stream;
    public long Version { get; } = version;
}

/// <summary>The header of an event-log file (shared/docs/event-log-format.md).</summary>
/// <param name="Mte">The host CPU had MTE (a scenario's <c>cpu.mte</c>): <c>"mte": true</c> in the header's
/// <c>cpu</c>, written only when set, so every log recorded before reads and exports as it was.</param>
public sealed record EventLogHeader(string Run, string Kernel, bool Fwb, bool Dic, int WordSize, long Seed, string? Scenario, string? Commit, long Events,
    bool Mte = false)
{
    /// <summary>The run as <c>import</c> records it at <paramref name="imported"/>: an event log does not
    /// say when its run started, so <see cref="RunInfo.Started"/> is the import's time too.</summary>
    public RunInfo ToRunInfo(string id, DateTimeOffset imported) => new()
    {
        Id = id, Seed = Seed, Kernel = Kernel, Fwb = Fwb, Dic = Dic, Mte = Mte, WordSize = WordSize, Scenario = Scenario, Commit = Commit,
        Started = imported, Imported = imported,
    };

    public static EventLogHeader FromRunInfo(RunInfo r, long events) => new(r.Id, r.Kernel, r.Fwb, r.Dic, r.WordSize, r.Seed, r.Scenario, r.Commit, events, r.Mte);

    /// <summary>The kernel, CPU and word size the header says the run had (a file's checked by
    /// <see cref="EventLogFile"/> as it reads the header).</summary>
    public KernelPolicy Policy => KernelPolicy.Of(Kernel, Fwb, Dic) with { WordSize = (WordSize)WordSize };
}

/// <summary>Writes and reads event logs as JSON Lines: line 1 the header, then one event per line in
/// global order. Reading validates everything and names file:line and field on the first error;
/// lines longer than <see cref="MaxLineBytes"/> are refused without being read into memory.</summary>
public static class EventLogFile
{
    public const string Format = "actorsim-event-log";
    public const int FormatVersion = 1;
    public const int MaxLineBytes = 16 << 20;
    internal static readonly JsonWriterOptions WriterOptions = new() { Indented = false };

    public static string Time(long ticks) => new DateTime(ticks, DateTimeKind.Utc).ToString("O", CultureInfo.InvariantCulture);

    public static async Task WriteAsync(Stream output, EventLogHeader header, IReadOnlyList<RunEvent> events)
    {
        await using var w = new StreamWriter(output, new UTF8Encoding(false)) { NewLine = "\n" };
        await w.WriteAsync(HeaderLine(header with { Events = events.Count }));
        await w.WriteAsync('\n');
        foreach (var e in events)
        {
            await w.WriteAsync(EventLine(e));
            await w.WriteAsync('\n');
        }
    }

    public static string HeaderLine(EventLogHeader h)
    {
        var buf = new MemoryStream();
        using (var j = new Utf8JsonWriter(buf, WriterOptions))
        {
            j.WriteStartObject();
            j.WriteString("format", Format);
            j.WriteNumber("version", FormatVersion);
            j.WriteString("run", h.Run);
            j.WriteString("kernel", h.Kernel);
            j.WriteStartObject("cpu");
            j.WriteBoolean("fwb", h.Fwb);
            j.WriteBoolean("dic", h.Dic);
            if (h.Mte) j.WriteBoolean("mte", true);
            j.WriteEndObject();
            j.WriteNumber("wordSize", h.WordSize);
            j.WriteNumber("seed", h.Seed);
            if (h.Scenario is null) j.WriteNull("scenario"); else j.WriteString("scenario", h.Scenario);
            if (h.Commit is null) j.WriteNull("commit"); else j.WriteString("commit", h.Commit);
            j.WriteNumber("events", h.Events);
            j.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buf.ToArray());
    }

    public static string EventLine(RunEvent e)
    {
        var buf = new MemoryStream();
        using (var j = new Utf8JsonWriter(buf, WriterOptions)) WriteEvent(j, e);
        return Encoding.UTF8.GetString(buf.ToArray());
    }

    /// <summary>One event line's JSON, without its end of line.</summary>
    internal static void WriteEvent(Utf8JsonWriter j, RunEvent e)
    {
        j.WriteStartObject();
        j.WriteNumber("seq", e.Seq);
        j.WriteString("stream", e.Stream);
        j.WriteNumber("version", e.Version);
        j.WriteString("type", e.Type);
        j.WriteString("time", Time(e.TimestampTicks));
        j.WritePropertyName("data");
        DomainEventSerializer.WriteTo(j, e.Event);
        j.WriteEndObject();
    }

    /// <summary>Reads and validates a whole file. Throws <see cref="EventLogFormatException"/> at the
    /// first problem (see <see cref="Open"/>).</summary>
    public static (EventLogHeader Header, List<RunEvent> Events) Read(string path)
    {
        using var log = Open(path);
        return (log.Header, [.. log.Events]);
    }

    /// <summary>Opens a file and reads its header (a problem there throws at once); its events are
    /// read as <see cref="EventLogReader.Events"/> is enumerated, validated as they come, so a caller
    /// that goes through them once (replay) holds a chunk of them at a time, not the whole run. A
    /// problem throws <see cref="EventLogFormatException"/> when its line is reached; a wrong event
    /// count at the end. Lines are decoded a chunk at a time on every core (decoding depends on nothing
    /// before it), in the background while the next chunk's lines are read and the chunk before is
    /// handed out; the checks that do — seq, each stream's version — run in file order, and a line the
    /// one-pass reader declines is read in order by <see cref="ParseEvent"/>, so the events and the
    /// first error are those of reading line by line.</summary>
    public static EventLogReader Open(string path)
    {
        var stream = File.OpenRead(path);
        try
        {
            var lines = ReadLines(stream, path).GetEnumerator();
            if (!lines.MoveNext()) throw new EventLogFormatException(path, 1, "header", "empty file");
            var header = ParseHeader(path, lines.Current.Bytes);
            return new EventLogReader(header, stream, ReadEvents(path, header, lines));
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static IEnumerable<RunEvent> ReadEvents(string path, EventLogHeader header, IEnumerator<(int Line, ReadOnlyMemory<byte> Bytes)> lines)
    {
        var count = 0L;
        var versions = new Dictionary<string, long>(StringComparer.Ordinal);
        var policy = header.Policy; // checked by ParseHeader
        // One chunk is decoded in the background while the lines of the next are read and the one
        // before it is checked and handed out: the reading, the checks and the caller's work (a
        // replay's fold) are serial, and with decoding now cheap they had become most of a pass.
        var (chunk, ahead) = ReadChunk(lines);
        var decoding = Decode(chunk);
        while (chunk.Count > 0 || ahead is not null)
        {
            var (next, nextAhead) = ahead is null ? ReadChunk(lines) : ([], null);
            var decoded = decoding.GetAwaiter().GetResult();
            decoding = Decode(next);
            for (var i = 0; i < chunk.Count; i++)
            {
                var expected = count + 1;
                var e = Checked(decoded[i], expected, versions) ?? ParseEvent(path, chunk[i].Line, chunk[i].Bytes, expected, versions);
                if (DecidedElsewise(e.Event, policy) is { } other)
                    throw new EventLogFormatException(path, chunk[i].Line, other.Field, $"decided under {other.Policy}, not under the header's {policy}");
                if (Domain.Simulation.EventStreams.Misplaced(e.Stream, e.Event) is { } misplaced)
                    throw new EventLogFormatException(path, chunk[i].Line, misplaced.Field, misplaced.Why);
                count++;
                yield return e;
            }
            // A problem found while reading ahead (a truncated or over-long line) is reported after the
            // lines before it, as reading line by line would.
            if (ahead is not null) throw ahead;
            (chunk, ahead) = (next, nextAhead);
        }
        if (header.Events != count)
            throw new EventLogFormatException(path, 1, "events", $"header says {header.Events} events, the file has {count}");
    }

    /// <summary>A decision of <paramref name="e"/> made under another policy than <paramref name="header"/>,
    /// with its field. A run decides under one policy (its kernel, CPU and word size; a resumed run keeps
    /// them), which its header names and `runs` and `summary` show: a decision under another means the
    /// header does not describe its file (written by hand, or spliced), and is refused as any wrong field.</summary>
    private static (string Field, KernelPolicy Policy)? DecidedElsewise(IDomainEvent e, KernelPolicy header)
    {
        switch (e)
        {
            case Domain.Kvm.Stage2FaultResolved one when one.Decision.Inputs.Policy != header:
                return ("data.decision.inputs.policy", one.Decision.Inputs.Policy);
            case Domain.Kvm.Stage2FaultsResolved many:
                for (var k = 0; k < many.Decisions.Length; k++)
                    if (many.Decisions[k].Inputs.Policy != header) return ($"data.decisions[{k}].inputs.policy", many.Decisions[k].Inputs.Policy);
                break;
        }
        return null;
    }

    /// <summary>Up to <see cref="DecodeChunk"/> lines, and the problem that stopped reading early, if any.</summary>
    private static (List<(int Line, ReadOnlyMemory<byte> Bytes)> Lines, EventLogFormatException? Ahead) ReadChunk(IEnumerator<(int Line, ReadOnlyMemory<byte> Bytes)> lines)
    {
        var chunk = new List<(int Line, ReadOnlyMemory<byte> Bytes)>(DecodeChunk);
        try
        {
            while (chunk.Count < DecodeChunk && lines.MoveNext()) chunk.Add(lines.Current);
        }
        catch (EventLogFormatException e)
        {
            return (chunk, e);
        }
        return (chunk, null);
    }

    /// <summary>The chunk's lines decoded on every core (null where the one-pass reader declines), in the background.</summary>
    private static Task<RunEvent?[]> Decode(List<(int Line, ReadOnlyMemory<byte> Bytes)> chunk) =>
        chunk.Count == 0 ? Task.FromResult(Array.Empty<RunEvent?>()) : Task.Run(() =>
        {
            var decoded = new RunEvent?[chunk.Count];
            Parallel.For(0, chunk.Count, i => decoded[i] = DecodeWritten(chunk[i].Bytes.Span));
            return decoded;
        });

    private const int DecodeChunk = 2048;

    /// <summary>Lines (UTF-8, without their "\n"), read in blocks; a last line without one is
    /// truncated; an over-long line is refused as soon as it passes the limit.</summary>
    private static IEnumerable<(int Line, ReadOnlyMemory<byte> Bytes)> ReadLines(Stream s, string path)
    {
        var block = new byte[1 << 16];
        var partial = new MemoryStream();
        var lineNo = 1;
        int n;
        while ((n = s.Read(block, 0, block.Length)) > 0)
        {
            if (lineNo == 1 && partial.Length == 0 && Compressed(block.AsSpan(0, n)) is { } tool)
                throw new EventLogFormatException(path, 1, "json", $"{tool.Format} file, not JSON Lines: decompress it first ({tool.Command} FILE)");
            var start = 0;
            while (start < n)
            {
                var nl = Array.IndexOf(block, (byte)'\n', start, n - start);
                var end = nl < 0 ? n : nl;
                if (partial.Length + (end - start) > MaxLineBytes) throw new EventLogFormatException(path, lineNo, "line", $"longer than {MaxLineBytes} bytes");
                if (nl < 0)
                {
                    partial.Write(block, start, end - start);
                    break;
                }
                byte[] line;
                if (partial.Length == 0) line = block.AsSpan(start, end - start).ToArray();
                else
                {
                    partial.Write(block, start, end - start);
                    line = partial.ToArray();
                    partial.SetLength(0);
                }
                yield return (lineNo++, line);
                start = nl + 1;
            }
        }
        if (partial.Length > 0) throw new EventLogFormatException(path, lineNo, "line", "truncated (no end of line)");
    }

    /// <summary>The compression a file's first bytes say it has (their magic numbers), and the command that
    /// undoes it: a compressed log was "malformed JSON ('0x1F' is an invalid start of a value)", or
    /// "truncated" when it held no newline byte.</summary>
    private static (string Format, string Command)? Compressed(ReadOnlySpan<byte> start) =>
        start.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B]) ? ("a gzip-compressed", "gunzip")
        : start.StartsWith((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD]) ? ("a zstd-compressed", "unzstd")
        : start.StartsWith((ReadOnlySpan<byte>)[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) ? ("an xz-compressed", "unxz")
        : start.StartsWith("BZh"u8) ? ("a bzip2-compressed", "bunzip2")
        : null;

    /// <summary>The line as a JSON document (the caller disposes it).</summary>
    private static JsonDocument Object(string path, int line, ReadOnlyMemory<byte> bytes)
    {
        if (bytes.Span.StartsWith("\uFEFF"u8))
            throw new EventLogFormatException(path, line, "json", "starts with a byte order mark (the format is UTF-8 without one)");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new EventLogFormatException(path, line, "json", $"malformed JSON ({e.Message.Split('.')[0]})");
        }
        if (doc.RootElement.ValueKind == JsonValueKind.Object) return doc;
        doc.Dispose();
        throw new EventLogFormatException(path, line, "line", "not a JSON object");
    }

    private static void OnlyKeys(string path, int line, JsonElement o, params string[] keys) => OnlyKeys(path, line, o, [], keys);

    /// <summary>Every one of <paramref name="keys"/> and maybe some of <paramref name="optional"/>, no other.</summary>
    private static void OnlyKeys(string path, int line, JsonElement o, string[] optional, params string[] keys)
    {
        foreach (var p in o.EnumerateObject())
            if (!keys.Contains(p.Name) && !optional.Contains(p.Name)) throw new EventLogFormatException(path, line, p.Name.Length == 0 ? "\"\"" : p.Name, "unknown field");
        foreach (var k in keys)
            if (!o.TryGetProperty(k, out _)) throw new EventLogFormatException(path, line, k, "missing");
    }

    private static EventLogHeader ParseHeader(string path, ReadOnlyMemory<byte> text)
    {
        using var doc = Object(path, 1, text);
        var h = doc.RootElement;
        OnlyKeys(path, 1, h, "format", "version", "run", "kernel", "cpu", "wordSize", "seed", "scenario", "commit", "events");
        if (h.GetProperty("format").ValueKind != JsonValueKind.String || h.GetProperty("format").GetString() != Format)
            throw new EventLogFormatException(path, 1, "format", $"not \"{Format}\"");
        var version = Int(path, 1, h, "version");
        if (version > FormatVersion) throw new EventLogFormatException(path, 1, "version", $"format version {version} is newer than this build reads ({FormatVersion})");
        if (version < 1) throw new EventLogFormatException(path, 1, "version", "must be 1");
        var kernel = Str(path, 1, h, "kernel");
        if (!RuleSets.TryParse(kernel, out _)) throw new EventLogFormatException(path, 1, "kernel", $"unknown rule set '{kernel}'");
        var cpu = h.GetProperty("cpu");
        if (cpu.ValueKind != JsonValueKind.Object) throw new EventLogFormatException(path, 1, "cpu", "not an object");
        OnlyKeys(path, 1, cpu, ["mte"], "fwb", "dic");
        var word = Int(path, 1, h, "wordSize");
        if (word is not (32 or 64)) throw new EventLogFormatException(path, 1, "wordSize", "must be 32 or 64");
        return new EventLogHeader(Str(path, 1, h, "run"), kernel, Bool(path, 1, cpu, "fwb"), Bool(path, 1, cpu, "dic"), (int)word,
            Int(path, 1, h, "seed"), NullableStr(path, 1, h, "scenario"), NullableStr(path, 1, h, "commit"), Int(path, 1, h, "events"),
            cpu.TryGetProperty("mte", out _) && Bool(path, 1, cpu, "mte"));
    }

    /// <summary>An event line exactly as <see cref="WriteAsync"/> writes it (the keys in their order,
    /// nothing escaped), read with one <see cref="Utf8JsonReader"/> pass and the same checks as
    /// <see cref="ParseEvent"/>; null for anything else — a line with a problem included — which then
    /// goes through ParseEvent for its verdict and message. Building a JsonDocument per line and looking
    /// its keys up was half of replay's time from a file.</summary>
    internal static RunEvent? TryParseWritten(ReadOnlySpan<byte> line, long expectedSeq, Dictionary<string, long> versions) =>
        Checked(DecodeWritten(line), expectedSeq, versions);

    /// <summary>The checks of a decoded line that depend on the lines before it; updates the stream's
    /// version when they pass.</summary>
    private static RunEvent? Checked(RunEvent? e, long expectedSeq, Dictionary<string, long> versions)
    {
        if (e is null || e.Seq != expectedSeq || e.Version != versions.GetValueOrDefault(e.Stream) + 1) return null;
        versions[e.Stream] = e.Version;
        return e;
    }

    /// <summary>The line's own checks and its event, or null (see <see cref="TryParseWritten"/>).</summary>
    private static RunEvent? DecodeWritten(ReadOnlySpan<byte> line)
    {
        try
        {
            var r = new Utf8JsonReader(line);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return null;
            if (!DecisionRecordConverter.Prop(ref r, "seq"u8) || r.TokenType != JsonTokenType.Number || !r.TryGetInt64(out var seq)) return null;
            if (!DecisionRecordConverter.Prop(ref r, "stream"u8) || r.TokenType != JsonTokenType.String || r.ValueIsEscaped) return null;
            var stream = r.GetString()!;
            if (stream.Length == 0 || stream.Contains('/')) return null;
            if (!DecisionRecordConverter.Prop(ref r, "version"u8) || r.TokenType != JsonTokenType.Number || !r.TryGetInt64(out var version)) return null;
            if (!DecisionRecordConverter.Prop(ref r, "type"u8) || r.TokenType != JsonTokenType.String || r.ValueIsEscaped) return null;
            var type = r.GetString()!;
            if (!DomainEventSerializer.IsKnownAlias(type)) return null;
            if (!DecisionRecordConverter.Prop(ref r, "time"u8) || r.TokenType != JsonTokenType.String || r.ValueIsEscaped) return null;
            if (!WrittenTime(r.ValueSpan, out var t) && !DateTime.TryParseExact(r.GetString(), "O", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out t)) return null;
            if (!DecisionRecordConverter.Prop(ref r, "data"u8) || r.TokenType != JsonTokenType.StartObject) return null;
            // A decision event as this build writes it, ending the line: matched without the tokenizer.
            var data = line[(int)r.TokenStartIndex..];
            if (DecisionRecordConverter.TryMatchEvent(type, data, out var written, out var consumed) && data[consumed..].SequenceEqual("}"u8))
                return new RunEvent(seq, stream, version, written!, t.Ticks);
            var e = DomainEventSerializer.FromJson(type, ref r);
            if (!r.Read() || r.TokenType != JsonTokenType.EndObject || r.Read()) return null;
            return new RunEvent(seq, stream, version, e, t.Ticks);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException or NotSupportedException or FormatException)
        {
            return null;
        }
    }

    /// <summary>A time as <see cref="Time"/> writes it ("yyyy-MM-ddTHH:mm:ss.fffffffZ", UTC), parsed
    /// from the UTF-8 bytes; false for any other form, which the caller parses as before.</summary>
    private static bool WrittenTime(ReadOnlySpan<byte> utf8, out DateTime time)
    {
        time = default;
        return utf8.Length == 28 && utf8[^1] == (byte)'Z'
            && System.Buffers.Text.Utf8Parser.TryParse(utf8, out time, out var used, 'O') && used == utf8.Length && time.Kind == DateTimeKind.Utc;
    }

    internal static RunEvent ParseEvent(string path, int line, ReadOnlyMemory<byte> text, long expectedSeq, Dictionary<string, long> versions)
    {
        using var doc = Object(path, line, text);
        var o = doc.RootElement;
        OnlyKeys(path, line, o, "seq", "stream", "version", "type", "time", "data");
        var seq = Int(path, line, o, "seq");
        if (seq != expectedSeq) throw new EventLogFormatException(path, line, "seq", seq < expectedSeq ? $"{seq} repeats or goes back (expected {expectedSeq})" : $"gap: {seq} after {expectedSeq - 1}");
        var stream = Str(path, line, o, "stream");
        if (stream.Length == 0 || stream.Contains('/')) throw new EventLogFormatException(path, line, "stream", "empty or contains '/'");
        var version = Int(path, line, o, "version");
        var expectedVersion = versions.GetValueOrDefault(stream) + 1;
        if (version != expectedVersion) throw new EventLogFormatException(path, line, "version", $"{stream} version {version}, expected {expectedVersion}");
        versions[stream] = version;
        var type = Str(path, line, o, "type");
        if (!DomainEventSerializer.IsKnownAlias(type)) throw new EventLogFormatException(path, line, "type", $"unknown event type '{type}'");
        var time = Str(path, line, o, "time");
        if (!DateTime.TryParseExact(time, "O", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t))
            throw new EventLogFormatException(path, line, "time", $"'{time}' is not an ISO 8601 time");
        IDomainEvent e;
        try
        {
            e = DomainEventSerializer.FromJson(type, DomainEventSerializer.VersionOf(type), o.GetProperty("data"));
        }
        catch (JsonException ex)
        {
            var (field, message) = DataFieldError.Describe(ex, DomainEventSerializer.TypeOf(type), o.GetProperty("data"));
            throw new EventLogFormatException(path, line, field, message);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NotSupportedException or FormatException)
        {
            throw new EventLogFormatException(path, line, "data", ex.Message.Split('\n')[0]);
        }
        return new RunEvent(seq, stream, version, e, t.Ticks);
    }

    private static string Str(string path, int line, JsonElement o, string k) =>
        o.GetProperty(k) is { ValueKind: JsonValueKind.String } v ? v.GetString()! : throw new EventLogFormatException(path, line, k, "not a string");

    private static string? NullableStr(string path, int line, JsonElement o, string k) =>
        o.GetProperty(k).ValueKind == JsonValueKind.Null ? null : Str(path, line, o, k);

    private static long Int(string path, int line, JsonElement o, string k)
    {
        var v = o.GetProperty(k);
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n)) return n;
        throw new EventLogFormatException(path, line, k, v.ValueKind == JsonValueKind.Number && DataFieldError.IsIntegerLiteral(v)
            ? $"{v.GetRawText()} is out of range (a 64-bit integer)" : "not an integer");
    }

    private static bool Bool(string path, int line, JsonElement o, string k) =>
        o.GetProperty(k).ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new EventLogFormatException(path, line, k, "not true or false"),
        };
}

/// <summary>An open event log: its header, and its events as they are read (once).</summary>
public sealed class EventLogReader(EventLogHeader header, Stream stream, IEnumerable<RunEvent> events) : IDisposable
{
    public EventLogHeader Header { get; } = header;
    public IEnumerable<RunEvent> Events { get; } = events;
    public void Dispose() => stream.Dispose();
}
