using ActorSim.Persistence.EventLog;

namespace ActorSim.Persistence.Tests;

/// <summary>The streaming writer of `run --export` and `export`: the same bytes as writing the whole
/// list, the output untouched until it completes, nothing left behind.</summary>
public class EventLogSinkTests
{
    private static readonly List<RunEvent> Events = EventSerializationTests.SampleEvents()
        .Select((e, i) => new RunEvent(i + 1, "s" + (i % 3), i / 3 + 1, e, 638_000_000_000_000_000L + i)).ToList();

    private static readonly EventLogHeader Header = new("sink", "6.9", true, true, 64, 7, null, null, 0); // the sample decisions' policy

    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sink-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A new temporary directory holding one regular file, "f".</summary>
    private static (string Dir, string File) TempDirWithFile()
    {
        var dir = TempDir();
        var file = Path.Combine(dir, "f");
        File.WriteAllText(file, "x");
        return (dir, file);
    }

    [Fact]
    public async Task It_writes_the_bytes_the_whole_list_writes_with_the_count_in_the_header()
    {
        var dir = TempDir();
        var whole = new MemoryStream();
        await EventLogFile.WriteAsync(whole, Header, Events);
        var output = Path.Combine(dir, "log.jsonl");
        using (var sink = new EventLogSink(output))
        {
            foreach (var e in Events) sink.Append(e);
            Assert.Equal(Events.Count, sink.Count);
            await sink.CompleteAsync(Header);
        }
        Assert.Equal(whole.ToArray(), await File.ReadAllBytesAsync(output));
        Assert.Equal([output], Directory.GetFiles(dir)); // no part or tmp file left
        var (h, read) = EventLogFile.Read(output);
        Assert.Equal((Events.Count, Events.Count), ((int)h.Events, read.Count));
        Directory.Delete(dir, true);
    }

    /// <summary>An output that is no regular file — here a FIFO, standing for /dev/null or a pipe — is
    /// written into, not replaced: the finished log was renamed over it, and `export -o /dev/null` as root
    /// left /dev/null a regular file. Its part file goes to the temporary directory, not beside it.</summary>
    [Fact]
    public async Task A_fifo_given_as_the_output_gets_the_log_and_stays_a_fifo()
    {
        var dir = TempDir();
        var fifo = Path.Combine(dir, "pipe");
        using (var mk = System.Diagnostics.Process.Start("mkfifo", fifo)) await mk.WaitForExitAsync();
        Assert.True(SpecialFiles.IsSpecial(fifo));
        var whole = new MemoryStream();
        await EventLogFile.WriteAsync(whole, Header, Events);
        var reading = Task.Run(() => File.ReadAllBytes(fifo)); // opens once a writer does
        using (var sink = new EventLogSink(fifo))
        {
            foreach (var e in Events) sink.Append(e);
            Assert.Equal([fifo], Directory.GetFiles(dir)); // no part file beside it
            await sink.CompleteAsync(Header);
        }
        Assert.Equal(whole.ToArray(), await reading.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(SpecialFiles.IsSpecial(fifo), "the FIFO was replaced by a file");
        Directory.Delete(dir, true);
    }

    /// <summary>A symbolic link given as the output stays a link, and the file it leads to gets the log:
    /// the finished log was renamed over the link, and the file was left as it was.</summary>
    [Fact]
    public async Task A_link_given_as_the_output_stays_a_link_and_its_file_gets_the_log()
    {
        var (dir, file) = TempDirWithFile();
        var link = Path.Combine(dir, "link");
        File.CreateSymbolicLink(link, "f");
        var whole = new MemoryStream();
        await EventLogFile.WriteAsync(whole, Header, Events);
        using (var sink = new EventLogSink(link))
        {
            foreach (var e in Events) sink.Append(e);
            await sink.CompleteAsync(Header);
        }
        Assert.Equal(whole.ToArray(), await File.ReadAllBytesAsync(file));
        Assert.Equal("f", new FileInfo(link).LinkTarget);
        Assert.Equal([file, link], Directory.GetFiles(dir).Order()); // no part or tmp file left
        Directory.Delete(dir, true);
    }

    /// <summary>A name of one of this process's descriptors (/dev/stdout, /proc/self/fd/N, a link to one) is
    /// written into at the descriptor's offset and never replaced, whatever the descriptor is open on: with
    /// the standard output sent to a file, `export -o /dev/stdout` took /dev/stdout for that file and, as
    /// root, renamed the finished log over the /dev/stdout link. Here a file this test holds open stands for
    /// the standard output, named by a link to /proc/self/fd/N.</summary>
    [Fact]
    public async Task A_descriptor_named_as_the_output_is_written_at_its_offset_and_its_name_stays()
    {
        var dir = TempDir();
        var file = Path.Combine(dir, "f");
        using var held = File.OpenHandle(file, FileMode.Create, FileAccess.Write);
        var fd = (int)held.DangerousGetHandle();
        var proc = $"/proc/self/fd/{fd}";
        var prefix = "before\n"u8.ToArray();
        using (var before = SpecialFiles.OpenDescriptor(proc)!) before.Write(prefix); // moves the descriptor's offset on
        var link = Path.Combine(dir, "stdout");
        File.CreateSymbolicLink(link, proc);
        Assert.Equal((fd, fd, fd), (SpecialFiles.Descriptor(link), SpecialFiles.Descriptor(proc), SpecialFiles.Descriptor($"/dev/fd/{fd}")));
        Assert.True(SpecialFiles.WritesInPlace(link));
        var whole = new MemoryStream();
        await EventLogFile.WriteAsync(whole, Header, Events);
        using (var sink = new EventLogSink(link))
        {
            Assert.True(sink.WritesInPlace);
            foreach (var e in Events) sink.Append(e);
            await sink.CompleteAsync(Header);
        }
        Assert.Equal(prefix.Concat(whole.ToArray()), await File.ReadAllBytesAsync(file));
        Assert.Equal(proc, new FileInfo(link).LinkTarget);
        Assert.Equal([file, link], Directory.GetFiles(dir).Order()); // no part file beside it
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Descriptors_are_named_only_while_open_and_only_this_process_s()
    {
        var (dir, file) = TempDirWithFile();
        Assert.Equal(1, SpecialFiles.Descriptor("/dev/stdout")); // the test host's, open on something
        Assert.Equal(2, SpecialFiles.Descriptor("/dev/stderr"));
        Assert.Null(SpecialFiles.Descriptor("/proc/self/fd/987654")); // not open
        Assert.Equal(1, SpecialFiles.Descriptor($"/proc/{Environment.ProcessId}/fd/1"));
        Assert.Equal(1, SpecialFiles.Descriptor("/proc/thread-self/fd/1"));
        Assert.Null(SpecialFiles.Descriptor("/proc/1/fd/1")); // another process's
        Assert.Null(SpecialFiles.Descriptor(file));
        Assert.Null(SpecialFiles.Descriptor(Path.Combine(dir, "none")));
        Assert.Null(SpecialFiles.OpenDescriptor(file));
        Assert.False(SpecialFiles.WritesInPlace(file));
        Directory.Delete(dir, true);
    }

    /// <summary>`export -o /dev/stdout | head`: the write after the reader has gone is told from other
    /// failures to write (the runtime ignores SIGPIPE, so it is the write's EPIPE).</summary>
    [Fact]
    public void A_write_into_a_pipe_whose_reader_has_gone_is_a_broken_pipe()
    {
        using var pipe = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
        pipe.DisposeLocalCopyOfClientHandle(); // the reading end: no reader left
        using var s = SpecialFiles.OpenDescriptor($"/proc/self/fd/{pipe.SafePipeHandle.DangerousGetHandle()}")!;
        var e = Assert.Throws<IOException>(() => s.Write(new byte[10]));
        Assert.True(SpecialFiles.IsBrokenPipe(e), e.ToString());
        Assert.False(SpecialFiles.IsBrokenPipe(new IOException("No space left on device", 28)));
    }

    [Fact]
    public void One_regular_file_is_the_same_file_however_it_is_named_and_a_device_named_twice_is_not()
    {
        var (dir, file) = TempDirWithFile();
        File.CreateSymbolicLink(Path.Combine(dir, "symlink"), file);
        using (var ln = System.Diagnostics.Process.Start("ln", [file, Path.Combine(dir, "hardlink")])) ln.WaitForExit();
        File.WriteAllText(Path.Combine(dir, "other"), "x");
        Assert.True(SpecialFiles.SameFile(file, file));
        Assert.True(SpecialFiles.SameFile(file, Path.Combine(dir, ".", "f")));
        Assert.True(SpecialFiles.SameFile(file, Path.Combine(dir, "symlink")));
        Assert.True(SpecialFiles.SameFile(Path.Combine(dir, "hardlink"), file));
        Assert.True(SpecialFiles.SameFile(Path.Combine(dir, "new"), Path.Combine(dir, "..", Path.GetFileName(dir), "new"))); // not there yet
        Assert.False(SpecialFiles.SameFile(file, Path.Combine(dir, "other")));
        Assert.False(SpecialFiles.SameFile(file, Path.Combine(dir, "none")));
        Assert.False(SpecialFiles.SameFile("/dev/null", "/dev/null"));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Special_files_are_devices_and_pipes_not_files_directories_or_nothing()
    {
        var (dir, file) = TempDirWithFile();
        Assert.True(SpecialFiles.IsSpecial("/dev/null"));
        Assert.False(SpecialFiles.IsSpecial(file));
        Assert.False(SpecialFiles.IsSpecial(dir));
        Assert.False(SpecialFiles.IsSpecial(Path.Combine(dir, "none")));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Until_it_completes_the_output_is_untouched_and_a_sink_given_up_leaves_nothing()
    {
        var dir = TempDir();
        var output = Path.Combine(dir, "log.jsonl");
        File.WriteAllText(output, "an earlier export\n");
        using (var sink = new EventLogSink(output))
        {
            foreach (var e in Events) sink.Append(e);
            Assert.Equal("an earlier export\n", File.ReadAllText(output));
        }
        Assert.Equal("an earlier export\n", File.ReadAllText(output));
        Assert.Equal([output], Directory.GetFiles(dir));
        Directory.Delete(dir, true);
    }

    /// <summary>Abandoned (a signal ends the process at once, Dispose will not run): its part file goes, the
    /// output and a file that is not the sink's (an OUTPUT.tmp of the user's, before completing began) stay.</summary>
    [Fact]
    public void An_abandoned_sink_deletes_its_part_file_and_nothing_else()
    {
        var dir = TempDir();
        var output = Path.Combine(dir, "log.jsonl");
        File.WriteAllText(output, "an earlier export\n");
        File.WriteAllText(output + ".tmp", "not the sink's\n");
        using (var sink = new EventLogSink(output))
        {
            foreach (var e in Events) sink.Append(e);
            Assert.True(File.Exists(output + ".part"));
            sink.Abandon();
            Assert.False(File.Exists(output + ".part"));
            sink.Append(Events[0]); // the stream is left to whoever writes it: still writable
        }
        Assert.Equal("an earlier export\n", File.ReadAllText(output));
        Assert.Equal("not the sink's\n", File.ReadAllText(output + ".tmp"));
        Assert.Equal([output, output + ".tmp"], Directory.GetFiles(dir).Order());
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task An_empty_log_is_a_header_with_no_events()
    {
        var dir = TempDir();
        var output = Path.Combine(dir, "empty.jsonl");
        using (var sink = new EventLogSink(output)) await sink.CompleteAsync(Header with { Events = 99 });
        var (h, read) = EventLogFile.Read(output);
        Assert.Equal((0L, 0), (h.Events, read.Count));
        Directory.Delete(dir, true);
    }
}
