using ActorSim.Persistence.EventLog;
using CsCheck;

namespace ActorSim.Persistence.Tests;

/// <summary>Mutated event logs: the reader either accepts them or names file:line and the field —
/// never another exception. (Import validates the whole file before it writes anything.)</summary>
public class EventLogFuzzTests
{
    private static readonly string Good = MakeLog();

    private static string MakeLog()
    {
        var events = EventSerializationTests.SampleEvents().Select((e, i) => new RunEvent(i + 1, "s" + (i % 3), i / 3 + 1, e, 638_000_000_000_000_000L + i)).ToList();
        var ms = new MemoryStream();
        EventLogFile.WriteAsync(ms, new EventLogHeader("fuzz", "6.9", true, true, 64, 7, null, null, events.Count), events).GetAwaiter().GetResult();
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    private static readonly string[] Tokens = ["{", "}", "[", "]", ":", ",", "\"", "\n", "0x", "null", "true", "-1", "1e400", "\"seq\":", "\\u0000", "99999999999999999999"];

    private static void ReadOrFormatError(string text)
    {
        var path = Path.Combine(Path.GetTempPath(), $"fuzz-{Environment.CurrentManagedThreadId}-{Environment.ProcessId}.jsonl");
        File.WriteAllText(path, text);
        try
        {
            EventLogFile.Read(path);
        }
        catch (EventLogFormatException e)
        {
            if (e.Line < 1 || string.IsNullOrEmpty(e.Field) || !e.Message.StartsWith(path + ":", StringComparison.Ordinal))
                throw new Exception($"bad error: {e.Message}");
        }
    }

    [Fact]
    public void The_unmutated_log_reads_back()
    {
        var path = Path.Combine(Path.GetTempPath(), $"good-{Environment.ProcessId}.jsonl");
        File.WriteAllText(path, Good);
        var (h, events) = EventLogFile.Read(path);
        Assert.Equal(h.Events, events.Count);
    }

    private static readonly Gen<(int, int, int, int)[]> Edits =
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 1_000_000], Gen.Int[0, Tokens.Length - 1], Gen.Int[1, 30]).Array[1, 5];

    [Fact]
    public void Mutated_event_logs_never_throw_anything_but_a_format_error() => Edits.Sample(ReadMutated, iter: 1500, threads: 1);

    /// <summary>A seed CI met: a VMA's PTE ranges damaged into <c>[null]</c> threw a NullReferenceException
    /// instead of the format error.</summary>
    [Fact]
    public void A_null_PTE_range_is_a_format_error() => Edits.Sample(ReadMutated, iter: 1500, threads: 1, seed: "4RNGRQ20Wq51");

    private static void ReadMutated((int, int, int, int)[] edits)
    {
        var text = Good;
        foreach (var (kind, at, token, len) in edits)
        {
            var i = text.Length == 0 ? 0 : at % text.Length;
            text = kind switch
            {
                0 => text.Remove(i, Math.Min(len, text.Length - i)),
                1 => text.Insert(i, Tokens[token]),
                2 => text[..i],
                _ => text.Remove(i, Math.Min(1, text.Length - i)).Insert(i, Tokens[token]),
            };
        }
        ReadOrFormatError(text);
    }

    /// <summary>What a line reads as: the event (as written back) or "rejected".</summary>
    private static string Verdict(Func<RunEvent?> read)
    {
        try
        {
            return read() is { } e ? $"{e.Seq} {e.Stream} {e.Version} {e.TimestampTicks} {e.Type} {Serialization.DomainEventSerializer.ToJson(e.Event).GetRawText()}" : "declined";
        }
        catch (EventLogFormatException)
        {
            return "rejected";
        }
    }

    [Fact]
    public void The_one_pass_line_reader_reads_every_line_as_the_document_path_does_or_declines()
    {
        var lines = Good.Split('\n')[1..^1];
        // Every written line is read by the one-pass reader, to the same event.
        var versions = new Dictionary<string, long>();
        var fast = new Dictionary<string, long>();
        for (var i = 0; i < lines.Length; i++)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(lines[i]);
            var general = Verdict(() => EventLogFile.ParseEvent("f", i + 2, bytes, i + 1, versions));
            Assert.Equal(general, Verdict(() => EventLogFile.TryParseWritten(bytes, i + 1, fast)));
        }
        // A mutated line: the one-pass reader declines it, or reads what the document path reads.
        Gen.Select(Gen.Int[0, lines.Length - 1], Gen.Int[0, 3], Gen.Int[0, 1_000_000], Gen.Int[0, Tokens.Length - 1], Gen.Int[1, 12]).Sample((n, kind, at, token, len) =>
        {
            var text = lines[n];
            var i = at % text.Length;
            text = kind switch
            {
                0 => text.Remove(i, Math.Min(len, text.Length - i)),
                1 => text.Insert(i, Tokens[token]),
                2 => text.Replace("\"seq\":", "\"seq\" : "),
                _ => text.Remove(i, Math.Min(1, text.Length - i)).Insert(i, Tokens[token]),
            };
            var bytes = System.Text.Encoding.UTF8.GetBytes(text);
            var seq = long.Parse(lines[n][7..lines[n].IndexOf(',')]);
            var before = new Dictionary<string, long>();
            foreach (var l in lines[..n])
            {
                var s = l[(l.IndexOf("\"stream\":\"", StringComparison.Ordinal) + 10)..];
                s = s[..s.IndexOf('"')];
                before[s] = before.GetValueOrDefault(s) + 1;
            }
            var fastVerdict = Verdict(() => EventLogFile.TryParseWritten(bytes, seq, new Dictionary<string, long>(before)));
            if (fastVerdict != "declined")
                Assert.Equal(Verdict(() => EventLogFile.ParseEvent("f", n + 2, bytes, seq, new Dictionary<string, long>(before))), fastVerdict);
        }, iter: 3000, threads: 1);
    }

    /// <summary>event-log-format.md: import rejects "a missing … field", "with file:line and the field".
    /// Every field of every sample event's data, at any depth, taken out in turn: the line is refused,
    /// naming it and the field by its path (data.decision.inputs.slot.id) — not read with that field's
    /// default (a decision without its faultLevel read as level 0, and verified).</summary>
    [Fact]
    public void An_event_with_any_field_of_its_data_missing_is_refused_naming_the_field() =>
        EveryField("missing", (parent, name, value) => parent.Remove(name), (path, e) =>
        {
            Assert.Equal(path, e.Field);
            Assert.Equal("missing", e.Message[(e.Message.LastIndexOf(": ", StringComparison.Ordinal) + 2)..]);
        });

    /// <summary>The same for "an unknown field": every field renamed in turn.</summary>
    [Fact]
    public void An_event_with_an_unknown_field_anywhere_in_its_data_is_refused_naming_it() =>
        EveryField("unknown", (parent, name, value) =>
        {
            parent.Remove(name);
            parent[name + "X"] = value;
        }, (path, e) =>
        {
            Assert.Equal(path + "X", e.Field);
            Assert.EndsWith(": unknown field", e.Message, StringComparison.Ordinal);
        });

    /// <summary>A value of the wrong kind (12.5, where every field is an integer, a string, a name, a
    /// list or an object) anywhere in the data: named by its path, and said in the log's terms — the
    /// value and what was expected there, not the .NET type it was read into, nor a byte position.</summary>
    [Fact]
    public void A_value_of_the_wrong_kind_anywhere_in_the_data_is_refused_naming_its_field() =>
        EveryField("kind", (parent, name, value) => parent[name] = 12.5, (path, e) =>
        {
            Assert.Equal(path, e.Field);
            Assert.DoesNotContain("ActorSim.", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("System.", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("BytePosition", e.Message, StringComparison.Ordinal);
            Assert.EndsWith($"{path}: 12.5: expected {Expected(e.Message)}", e.Message, StringComparison.Ordinal);
            Assert.True(Expected(e.Message).Length > 0, e.Message);
        });

    private static string Expected(string message) =>
        message.IndexOf(": expected ", StringComparison.Ordinal) is var at and >= 0 ? message[(at + ": expected ".Length)..] : "";

    /// <summary>The words of those errors, on a decision's fields: the value as written, and what was expected.</summary>
    [Theory]
    [InlineData("faultLevel", "\"x\"", "\"x\": expected an integer")]
    [InlineData("faultIsPerm", "7", "7: expected true or false")]
    [InlineData("op", "\"fetch\"", "\"fetch\": expected one of Read, Write, Exec")]
    [InlineData("slot", "7", "7: expected an object")]
    [InlineData("gpa", "\"0xg\"", "'0xg' is not a 0x hex number")]
    [InlineData("hva", "null", "null: expected a 0x hex number")]
    [InlineData("pfnHva", "[1]", "[1]: expected a 0x hex number")]
    [InlineData("vcpu", "99999999999", "99999999999 is out of range (-2147483648 to 2147483647)")]
    [InlineData("faultLevel", "3.5", "3.5: expected an integer")]
    [InlineData("gpa", "-5", "-5 is out of range (0 to 18446744073709551615)")]
    [InlineData("gpa", "\"0x1ffffffffffffffff\"", "'0x1ffffffffffffffff' is out of range (more than 64 bits)")]
    [InlineData("gpa", "\"0x\"", "'0x' is not a 0x hex number")]
    public void A_bad_decision_field_is_said_with_its_value(string field, string json, string message)
    {
        var lines = Good.Split('\n');
        var n = Array.FindIndex(lines, l => l.Contains("\"type\":\"stage2_fault_resolved\"", StringComparison.Ordinal));
        var line = System.Text.Json.Nodes.JsonNode.Parse(lines[n])!;
        line["data"]!["decision"]!["inputs"]![field] = System.Text.Json.Nodes.JsonNode.Parse(json);
        lines[n] = line.ToJsonString();
        var path = WriteTemp("said", lines);
        var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(path));
        Assert.Equal($"{path}:{n + 1}: data.decision.inputs.{field}: {message}", e.Message);
    }

    /// <summary>An event's own integers (not its data's): a fraction is not one, an integer past 64 bits
    /// is out of range.</summary>
    [Theory]
    [InlineData("seq", "1e3", "not an integer")]
    [InlineData("seq", "2.5", "not an integer")]
    [InlineData("version", "99999999999999999999", "99999999999999999999 is out of range (a 64-bit integer)")]
    public void A_bad_integer_in_an_event_is_said_so(string field, string json, string message)
    {
        var lines = Good.Split('\n');
        var line = System.Text.Json.Nodes.JsonNode.Parse(lines[1])!;
        line[field] = System.Text.Json.Nodes.JsonNode.Parse(json);
        lines[1] = line.ToJsonString();
        var path = WriteTemp("integer", lines);
        var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(path));
        Assert.Equal($"{path}:2: {field}: {message}", e.Message);
    }

    /// <summary>Every field of every sample event's data edited in turn (and put back): each edited log
    /// must be refused, and <paramref name="check"/> gets the field's path and the error.</summary>
    private static void EveryField(string name, Action<System.Text.Json.Nodes.JsonObject, string, System.Text.Json.Nodes.JsonNode?> edit,
        Action<string, EventLogFormatException> check)
    {
        var lines = Good.Split('\n');
        var edits = 0;
        var accepted = new List<string>();
        for (var n = 1; n < lines.Length - 1; n++)
        {
            var line = System.Text.Json.Nodes.JsonNode.Parse(lines[n])!;
            foreach (var (parent, field, path) in Properties(line["data"]!, "data"))
            {
                var value = parent[field];
                var order = parent.Select(p => p.Key).ToArray();
                edit(parent, field, value?.DeepClone());
                var edited = lines.ToArray();
                edited[n] = line.ToJsonString();
                try
                {
                    EventLogFile.Read(WriteTemp(name, edited));
                    accepted.Add($"{path} of line {n + 1} ({line["type"]})");
                }
                catch (EventLogFormatException e)
                {
                    Assert.Equal(n + 1, e.Line);
                    try { check(path, e); }
                    catch (Exception failed) { throw new Exception($"{path} of line {n + 1}: {e.Message}", failed); }
                }
                // Put back, in its place.
                foreach (var key in parent.Select(p => p.Key).ToArray()) if (!order.Contains(key)) parent.Remove(key);
                var kept = order.Select(k => (k, k == field ? value : parent[k])).ToArray();
                foreach (var (k, _) in kept) parent.Remove(k);
                foreach (var (k, v) in kept) parent[k] = v;
                edits++;
            }
            Assert.Equal(lines[n], line.ToJsonString());
        }
        Assert.True(edits > 100, $"{edits} fields");
        Assert.True(accepted.Count == 0, string.Join("\n", accepted));
    }

    /// <summary>Every property of every object under <paramref name="node"/>: the object that holds it,
    /// its name, and its path as an error names it (data.vmas[0].pgOff).</summary>
    private static IEnumerable<(System.Text.Json.Nodes.JsonObject Parent, string Name, string Path)> Properties(System.Text.Json.Nodes.JsonNode node, string path)
    {
        switch (node)
        {
            case System.Text.Json.Nodes.JsonObject o:
                foreach (var name in o.Select(p => p.Key).ToArray())
                {
                    yield return (o, name, $"{path}.{name}");
                    if (o[name] is { } child)
                        foreach (var p in Properties(child, $"{path}.{name}")) yield return p;
                }
                break;
            case System.Text.Json.Nodes.JsonArray a:
                var i = 0;
                foreach (var child in a.ToArray())
                {
                    if (child is not null)
                        foreach (var p in Properties(child, $"{path}[{i}]")) yield return p;
                    i++;
                }
                break;
        }
    }

    [Fact]
    public void A_line_past_the_limit_is_refused_without_reading_it_whole()
    {
        var path = Path.Combine(Path.GetTempPath(), $"long-{Environment.ProcessId}.jsonl");
        using (var f = File.Create(path))
        {
            var header = System.Text.Encoding.UTF8.GetBytes(Good.Split('\n')[0] + "\n");
            f.Write(header);
            var chunk = new byte[1 << 20];
            Array.Fill(chunk, (byte)'x');
            for (var i = 0; i < 17; i++) f.Write(chunk);
        }
        var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(path));
        Assert.Equal((2, "line"), (e.Line, e.Field));
        File.Delete(path);
    }

    /// <summary>A log longer than one decode chunk (2,048 lines), as many events of one stream.</summary>
    private static string[] LongLog(int count)
    {
        var sample = EventSerializationTests.SampleEvents();
        var events = Enumerable.Range(0, count).Select(i => new RunEvent(i + 1, "s" + (i % 3), i / 3 + 1, sample[i % sample.Count], 638_000_000_000_000_000L + i)).ToList();
        var ms = new MemoryStream();
        EventLogFile.WriteAsync(ms, new EventLogHeader("long", "6.9", true, true, 64, 7, null, null, events.Count), events).GetAwaiter().GetResult();
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()).Split('\n');
    }

    private static string WriteTemp(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{name}-{Environment.ProcessId}.jsonl");
        File.WriteAllText(path, string.Join('\n', lines));
        return path;
    }

    /// <summary>The header names the run's kernel, CPU and word size (what `runs` and `summary` show after
    /// an import); a decision made under another is refused at its line, as a wrong field is (it was read
    /// as it came, and a run imported as "6.8" held decisions made under 6.9).</summary>
    [Theory]
    [InlineData("\"kernel\":\"6.9\"", "\"kernel\":\"6.8\"")]
    [InlineData("\"kernel\":\"6.9\"", "\"kernel\":\"6.17\"")]
    [InlineData("\"fwb\":true", "\"fwb\":false")]
    [InlineData("\"dic\":true", "\"dic\":false")]
    [InlineData("\"wordSize\":64", "\"wordSize\":32")]
    public void A_decision_made_under_another_policy_than_the_header_names_is_refused_at_its_line(string field, string other)
    {
        var lines = Good.Split('\n');
        Assert.Contains(field, lines[0]);
        lines[0] = lines[0].Replace(field, other);
        var first = Array.FindIndex(lines, l => l.Contains("\"type\":\"stage2_fault_resolved\"") || l.Contains("\"type\":\"stage2_faults_resolved\""));
        Assert.True(first > 0, "the sample has a decision");
        var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(WriteTemp("policy", lines)));
        Assert.Equal(first + 1, e.Line);
        Assert.Matches(@"^data\.decision(s\[0\])?\.inputs\.policy$", e.Field);
        Assert.Contains("not under the header's", e.Message);
    }

    /// <summary>The header's cpu says "mte": true when the run's CPU had MTE, and only then: every log
    /// written before reads as it was, and a bad value is refused at line 1, naming the field.</summary>
    [Fact]
    public async Task The_header_says_mte_only_when_set_and_reads_it_back()
    {
        var lines = Good.Split('\n');
        Assert.DoesNotContain("mte", lines[0]);
        Assert.False(EventLogFile.Read(WriteTemp("no-mte", lines)).Header.Mte);
        var header = EventLogFile.Read(WriteTemp("no-mte", lines)).Header with { Mte = true };
        var ms = new MemoryStream();
        await EventLogFile.WriteAsync(ms, header, []);
        var withMte = System.Text.Encoding.UTF8.GetString(ms.ToArray()).Split('\n')[0];
        Assert.Contains("\"cpu\":{\"fwb\":true,\"dic\":true,\"mte\":true}", withMte);
        lines[0] = lines[0].Replace("\"dic\":true}", "\"dic\":true,\"mte\":true}");
        Assert.True(EventLogFile.Read(WriteTemp("mte", lines)).Header.Mte);
        lines[0] = lines[0].Replace("\"mte\":true", "\"mte\":1");
        var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(WriteTemp("mte", lines)));
        Assert.Equal((1, "mte"), (e.Line, e.Field));
        lines[0] = lines[0].Replace("\"mte\":1", "\"sve\":true");
        e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(WriteTemp("mte", lines)));
        Assert.Equal((1, "sve"), (e.Line, e.Field));
    }

    [Fact]
    public void A_log_of_several_decode_chunks_reads_back_in_order()
    {
        var lines = LongLog(5000);
        var (_, events) = EventLogFile.Read(WriteTemp("chunks", lines));
        Assert.Equal(Enumerable.Range(1, 5000).Select(i => (long)i), events.Select(e => e.Seq));
        // each event as the line-by-line document path reads it
        var versions = new Dictionary<string, long>();
        for (var i = 0; i < events.Count; i += 997)
        {
            var seen = new Dictionary<string, long>(events.Take(i).GroupBy(e => e.Stream).ToDictionary(g => g.Key, g => (long)g.Count()));
            var one = EventLogFile.ParseEvent("f", i + 2, System.Text.Encoding.UTF8.GetBytes(lines[i + 1]), i + 1, seen);
            Assert.Equal((one.Stream, one.Version, one.TimestampTicks, Serialization.DomainEventSerializer.ToJson(one.Event).GetRawText()),
                (events[i].Stream, events[i].Version, events[i].TimestampTicks, Serialization.DomainEventSerializer.ToJson(events[i].Event).GetRawText()));
        }
    }

    /// <summary>A compressed log is named as one, with the command that undoes it: a gzip file was
    /// "malformed JSON ('0x1F' is an invalid start of a value)", or "truncated" with no newline byte in it.</summary>
    [Fact]
    public void A_compressed_log_is_told_to_be_decompressed_first()
    {
        var gz = new MemoryStream();
        using (var z = new System.IO.Compression.GZipStream(gz, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            z.Write(System.Text.Encoding.UTF8.GetBytes(Good));
        (string Name, byte[] Bytes, string Why)[] files =
        [
            ("gz", gz.ToArray(), "a gzip-compressed file, not JSON Lines: decompress it first (gunzip FILE)"),
            ("zst", [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x0A], "a zstd-compressed file, not JSON Lines: decompress it first (unzstd FILE)"),
            ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0x0A], "an xz-compressed file, not JSON Lines: decompress it first (unxz FILE)"),
            ("bz2", [.. "BZh91AY&SY"u8.ToArray(), 0x0A], "a bzip2-compressed file, not JSON Lines: decompress it first (bunzip2 FILE)"),
        ];
        foreach (var (name, bytes, why) in files)
        {
            var path = Path.Combine(Path.GetTempPath(), $"compressed-{Guid.NewGuid():N}.jsonl.{name}");
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(path));
            Assert.Equal($"{path}:1: json: {why}", e.Message);
            File.Delete(path);
        }
    }

    [Fact]
    public void The_first_problem_is_reported_even_when_a_later_line_of_the_chunk_is_unreadable()
    {
        var lines = LongLog(3000);
        // line 2,500, in the same chunk as the truncated last line: seq goes back
        Assert.StartsWith("{\"seq\":2499,", lines[2499]);
        lines[2499] = lines[2499].Replace("\"seq\":2499", "\"seq\":7");
        var truncated = lines[..^1]; // drop the final "" so the last line has no end of line
        var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(WriteTemp("first", truncated)));
        Assert.Equal((2500, "seq"), (e.Line, e.Field));
        // without the early problem, the truncated last line is what is reported
        var e2 = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(WriteTemp("last", LongLog(3000)[..^1])));
        Assert.Equal((3001, "line"), (e2.Line, e2.Field));
    }

    [Theory]
    [InlineData("2026-11-26T10:00:00.1234567Z")]       // as written: read from the bytes
    [InlineData("2026-11-26T12:00:00.1234567+02:00")]  // other forms: as the document path reads them
    [InlineData("2026-11-26T10:00:00.1234567")]
    [InlineData("2026-11-26T10:00:00Z")]               // not the round-trip form: refused both ways
    [InlineData("2026-11-26T10:00:00.123456Z")]
    public void A_time_reads_the_same_in_chunks_as_line_by_line(string time)
    {
        var lines = Good.Split('\n');
        var at = lines[1].IndexOf("\"time\":\"", StringComparison.Ordinal) + 8;
        lines[1] = lines[1][..at] + time + lines[1][lines[1].IndexOf('"', at)..];
        string Outcome(Func<long> read)
        {
            try { return $"ticks {read()}"; }
            catch (EventLogFormatException e) { return $"error {e.Field}"; }
        }
        var chunked = Outcome(() => EventLogFile.Read(WriteTemp("time", lines)).Events[0].TimestampTicks);
        Assert.Equal(Outcome(() => EventLogFile.ParseEvent("f", 2, System.Text.Encoding.UTF8.GetBytes(lines[1]), 1, []).TimestampTicks), chunked);
        if (time.EndsWith(".1234567Z", StringComparison.Ordinal) || time.EndsWith("+02:00", StringComparison.Ordinal))
            Assert.Equal($"ticks {new DateTime(2026, 11, 26, 10, 0, 0, DateTimeKind.Utc).Ticks + 1_234_567}", chunked);
    }

    [Fact]
    public void An_opened_log_gives_its_events_as_it_reads_them_and_throws_when_it_reaches_a_problem()
    {
        var lines = LongLog(5000);
        lines[4500] = lines[4500].Replace("\"seq\":4500", "\"seq\":7"); // line 4,501
        using var log = EventLogFile.Open(WriteTemp("open", lines));
        Assert.Equal(5000, log.Header.Events);
        var seen = new List<long>();
        var e = Assert.Throws<EventLogFormatException>(() => { foreach (var ev in log.Events) seen.Add(ev.Seq); });
        Assert.Equal((4501, "seq"), (e.Line, e.Field));
        Assert.Equal(Enumerable.Range(1, 4499).Select(i => (long)i), seen); // every event before it, in order
        // Read, on the same file, refuses it whole with the same error.
        var whole = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(WriteTemp("open", lines)));
        Assert.Equal((4501, "seq"), (whole.Line, whole.Field));
    }

    [Fact]
    public void An_event_whose_data_is_null_is_refused_with_its_line()
    {
        var lines = Good.Split('\n');
        var at = lines[1].IndexOf("\"data\":", StringComparison.Ordinal);
        lines[1] = lines[1][..at] + "\"data\":null}";
        var e = Assert.Throws<EventLogFormatException>(() => EventLogFile.Read(WriteTemp("nulldata", lines)));
        Assert.Equal((2, "data"), (e.Line, e.Field));
    }
}
