using System.Diagnostics;

namespace ActorSim.Host.Commands;

/// <summary>How far a long read or write of a run is (<c>import</c>, <c>export</c>, <c>replay</c>,
/// <c>explain</c>), on a
/// terminal: one line on stderr, drawn at the first event, rewritten once a second and cleared at the
/// end. A million-event log took 83 s to import here, silent until its last line. Nothing when stderr
/// is not a terminal or under CI (tests, pipes, logs).</summary>
internal sealed class TerminalProgress(string what, long? total = null)
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    private readonly bool _shown = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is not { Length: > 0 };
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _next = TimeSpan.Zero;
    private bool _drawn;

    /// <summary><paramref name="done"/> events so far: drawn the first time, then if a second has passed
    /// since the last.</summary>
    private void At(long done)
    {
        if (!_shown || _clock.Elapsed < _next) return;
        Console.Error.Write(total is { } t ? $"\r{what}: {done} of {t} events ({100.0 * done / Math.Max(1, t):0}%)" : $"\r{what}: {done} events");
        _next = _clock.Elapsed + Every;
        _drawn = true;
    }

    /// <summary>The line, gone (before the command's own last line, or its error).</summary>
    public void Clear()
    {
        if (!_drawn) return;
        Console.Error.Write("\r\u001b[K");
        _drawn = false;
    }

    /// <summary>The events, drawing how far they are as they go by, cleared after the last, or when
    /// reading them stops (an error in them or in what they are read for, a loop left early), before
    /// whatever is printed next.</summary>
    public IEnumerable<T> Over<T>(IEnumerable<T> events)
    {
        long n = 0;
        try
        {
            foreach (var e in events)
            {
                At(n++);
                yield return e;
            }
        }
        finally { Clear(); }
    }

    /// <summary><see cref="Over{T}"/> for events read from the database.</summary>
    public async IAsyncEnumerable<T> OverAsync<T>(IAsyncEnumerable<T> events)
    {
        long n = 0;
        try
        {
            await foreach (var e in events)
            {
                At(n++);
                yield return e;
            }
        }
        finally { Clear(); }
    }
}
