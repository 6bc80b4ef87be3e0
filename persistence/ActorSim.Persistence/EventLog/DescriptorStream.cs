using System.Runtime.InteropServices;

namespace ActorSim.Persistence.EventLog;

/// <summary>Writes into an open descriptor of this process with write(2): at the descriptor's offset,
/// which it moves on, so what the process writes there before and after lands in order, and an
/// <c>O_APPEND</c> descriptor (<c>&gt;&gt;</c>) is appended to. The descriptor is not closed. A failed write
/// throws an <see cref="IOException"/> whose HResult is the errno (as the runtime's own do), a pipe whose
/// reader has gone included (<see cref="SpecialFiles.IsBrokenPipe"/>): the runtime ignores SIGPIPE.</summary>
internal sealed class DescriptorStream(int fd) : Stream
{
    internal const int EPIPE = 32, EINTR = 4;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = write(fd, ref MemoryMarshal.GetReference(buffer), buffer.Length);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR) continue;
                throw new IOException(Marshal.GetPInvokeErrorMessage(errno), errno);
            }
            buffer = buffer[(int)n..];
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() { }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    [DllImport("libc", SetLastError = true)]
    private static extern nint write(int fd, ref byte buffer, nint count);
}
