using System.Diagnostics;

namespace ActorSim.Host.Commands;

/// <summary>CPU used over a measured window, in cores (CPU seconds ÷ wall seconds): this process's, and
/// that of the PostgreSQL processes on this machine (every process whose <c>/proc/PID/comm</c> is
/// <c>postgres</c>: backends, WAL writer, autovacuum). Which side is busy tells what limits a durable
/// figure: the host, the database, or neither (both waiting on each other). A PostgreSQL process that
/// exits inside the window takes its CPU time with it, so the database's figure is a lower bound; it
/// is null where there is no <c>/proc</c>, no local PostgreSQL process, or it was not asked for.
/// <para>Also the JIT's share of the window (<see cref="System.Runtime.JitInfo.GetCompilationTime"/>,
/// every thread's, ÷ the window's seconds): a window the JIT was still busy in measured the start-up
/// of code as much as the code (<see cref="BenchCommand"/>'s warm-up waits for it to settle).</para></summary>
internal sealed class CpuWindow
{
    // /proc/PID/stat counts in USER_HZ, which is 100 on Linux's x86-64 and arm64 ABIs (sysconf(_SC_CLK_TCK)).
    private const double TicksPerSecond = 100;

    private readonly TimeSpan _host;
    private readonly Dictionary<int, long>? _postgres;
    private readonly long _started;
    private readonly TimeSpan _jit;

    private CpuWindow(TimeSpan host, Dictionary<int, long>? postgres)
    {
        _host = host;
        _postgres = postgres;
        _jit = System.Runtime.JitInfo.GetCompilationTime();
        _started = Stopwatch.GetTimestamp();
    }

    /// <param name="postgres">Whether to count PostgreSQL's processes too (a run on a database).</param>
    public static CpuWindow Start(bool postgres) => new(Environment.CpuUsage.TotalTime, postgres ? PostgresTicks() : null);

    /// <summary>Cores used since <see cref="Start"/>: this process, and PostgreSQL's processes (those
    /// that started in the window counted whole); and the JIT's share of the window.</summary>
    public Cores Stop()
    {
        var seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
        var host = (Environment.CpuUsage.TotalTime - _host).TotalSeconds / seconds;
        var jit = (System.Runtime.JitInfo.GetCompilationTime() - _jit).TotalSeconds / seconds;
        if (_postgres is null || PostgresTicks() is not { Count: > 0 } now) return new(host, null, jit);
        long ticks = 0;
        foreach (var (pid, t) in now) ticks += t - _postgres.GetValueOrDefault(pid);
        return new(host, ticks / TicksPerSecond / seconds, jit);
    }

    /// <summary>A window's cores: this process's, PostgreSQL's (null if not counted), and the JIT's
    /// compilation time ÷ the window's wall time.</summary>
    public readonly record struct Cores(double Host, double? Postgres, double Jit);

    /// <summary>utime + stime of every PostgreSQL process, by pid; null without /proc.</summary>
    private static Dictionary<int, long>? PostgresTicks()
    {
        if (!Directory.Exists("/proc")) return null;
        var ticks = new Dictionary<int, long>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "comm")).TrimEnd('\n') != "postgres") continue;
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                ticks[pid] = long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
            {
                // The process went away, or is not ours to read.
            }
        }
        return ticks;
    }
}
