using System.Text.Json;

namespace ActorSim.Persistence.EventLog;

/// <summary>Writes an event log as its events come, holding none of them in memory: each event line
/// goes to a part file beside the output (<c>OUTPUT.part</c>) when it is appended, and
/// <see cref="CompleteAsync"/> writes the header — whose event count is known only then — and the lines
/// after it into <c>OUTPUT.tmp</c>, then moves that over the output. So the output is untouched until
/// the log is whole, and a run or a run's export of any length costs the same memory. (Both
/// `run --export` and `export` held every event of the run until the end: 500 MB of a 10-second
/// in-memory run.) A sink disposed without <see cref="CompleteAsync"/> deletes its part file. An output
/// that is no regular file (<c>/dev/null</c>, a FIFO) or names a descriptor (<c>/dev/stdout</c>:
/// <see cref="SpecialFiles.WritesInPlace"/>) is written into at the end instead, its part file in the
/// temporary directory.</summary>
public sealed class EventLogSink : IDisposable
{
    private readonly string _output;
    private readonly string _part;
    private readonly bool _special;
    private readonly FileStream _body;
    private readonly System.Buffers.ArrayBufferWriter<byte> _line = new(4096);
    private readonly Utf8JsonWriter _json;
    private bool _disposed;
    private volatile bool _completing;

    /// <summary>Opens <c>OUTPUT.part</c>; throws as File.Create does if it cannot.</summary>
    public EventLogSink(string output)
    {
        _special = SpecialFiles.WritesInPlace(output);
        // A symbolic link's file is replaced, not the link: the rename replaced the link itself (with the
        // log), and left the file it led to as it was.
        _output = _special || new FileInfo(output).LinkTarget is null ? output : File.ResolveLinkTarget(output, returnFinalTarget: true)!.FullName;
        _part = _special ? Path.Combine(Path.GetTempPath(), $"actorsim-{Guid.NewGuid():N}.part") : _output + ".part";
        _body = new FileStream(_part, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        // Into a buffer, not the file: Utf8JsonWriter.Flush on a stream flushes the stream too, a write
        // to the file per event.
        _json = new Utf8JsonWriter(_line, EventLogFile.WriterOptions);
    }

    /// <summary>Whether the output is no regular file or names a descriptor (<see cref="SpecialFiles.WritesInPlace"/>) and is written into
    /// rather than replaced.</summary>
    public bool WritesInPlace => _special;

    /// <summary>Events appended so far.</summary>
    public long Count { get; private set; }

    /// <summary>Writes the event's line; the caller numbers seq and versions (event-log-format.md).</summary>
    public void Append(RunEvent e)
    {
        EventLogFile.WriteEvent(_json, e);
        _json.Flush();
        _body.Write(_line.WrittenSpan);
        _body.WriteByte((byte)'\n');
        _line.ResetWrittenCount();
        _json.Reset();
        Count++;
    }

    /// <summary>Writes the output: the header (with <see cref="Count"/> as its event count), then the
    /// lines appended.</summary>
    public async Task CompleteAsync(EventLogHeader header)
    {
        await _body.FlushAsync();
        _body.Position = 0;
        var head = System.Text.Encoding.UTF8.GetBytes(EventLogFile.HeaderLine(header with { Events = Count }) + "\n");
        if (_special)
        {
            await using (var f = SpecialFiles.OpenDescriptor(_output) ?? new FileStream(_output, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            {
                await f.WriteAsync(head);
                await _body.CopyToAsync(f);
            }
            Dispose();
            return;
        }
        var tmp = _output + ".tmp";
        _completing = true;
        try
        {
            await using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                await f.WriteAsync(head);
                await _body.CopyToAsync(f);
            }
            File.Move(tmp, _output, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
        Dispose();
    }

    /// <summary>Deletes the part file, and the output's temporary file once completing has begun, without
    /// touching the streams (another thread may be writing them): for a process that a signal ends at once,
    /// where neither <see cref="Dispose"/> nor <see cref="CompleteAsync"/>'s clean-up runs (a Ctrl-C'd
    /// export of 900 k events left a 72 MB OUTPUT.part). The output stays as it was, or as completed.</summary>
    public void Abandon()
    {
        foreach (var f in _completing && !_special ? [_part, _output + ".tmp"] : new[] { _part })
        {
            try
            {
                File.Delete(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process is ending: what cannot be deleted stays.
            }
        }
    }

    /// <summary>Closes and deletes the part file (after <see cref="CompleteAsync"/>, its lines are in the output).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _json.Dispose();
        _body.Dispose();
        File.Delete(_part);
    }
}
