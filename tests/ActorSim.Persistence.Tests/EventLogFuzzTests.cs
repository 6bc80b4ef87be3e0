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

    [Fact]
    public void Mutated_event_logs_never_throw_anything_but_a_format_error()
    {
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 1_000_000], Gen.Int[0, Tokens.Length - 1], Gen.Int[1, 30]).Array[1, 5].Sample(edits =>
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
        }, iter: 1500, threads: 1);
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
}
