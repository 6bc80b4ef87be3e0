using Akka.Event;

namespace ActorSim.Persistence.Journal;

/// <summary>Riding out a database outage, the same for the journal's commits, its recovery reads and the
/// snapshot store's loads: while the database is unreachable (<see cref="IsTransient"/>: a lost or refused
/// connection, not a rejected statement) the call is tried again with backoff (100 ms doubling to 2 s)
/// for up to the plugin's <c>outage-limit</c>, and whoever waits for it — an actor's write or its
/// recovery, and behind them the vCPUs — waits meanwhile. The first failure publishes
/// <see cref="JournalOutage"/>, a success after it <see cref="JournalAvailable"/>; past the limit the
/// call fails and <see cref="JournalUnavailable"/> is published, which stops <c>run</c> and
/// <c>scenario</c> at once (exit 3).</summary>
public static class Outages
{
    /// <summary>The <c>outage-limit</c> of the journal and the snapshot store when none is given.</summary>
    public static readonly TimeSpan DefaultLimit = TimeSpan.FromSeconds(60);

    /// <summary>The journal's and the snapshot store's watcher (made once, each): the news on the
    /// <paramref name="events"/> stream.</summary>
    internal static Watcher Publishing(EventStream events) => new(
        e => events.Publish(new JournalOutage(e.GetType().Name)),
        () => events.Publish(new JournalAvailable()),
        (after, e) => events.Publish(new JournalUnavailable(after, e.GetType().Name)));

    /// <summary>Who hears of an outage that <see cref="RideOut{T}(Func{Task{T}}, TimeSpan, Watcher)"/> rides
    /// out: its start (the first failure), its end (a success after it), and its passing the limit; each
    /// failure as its <see cref="TransientCause"/>.</summary>
    public sealed record Watcher(Action<Exception> Outage, Action Back, Action<TimeSpan, Exception> GivenUp);

    /// <summary>Tries <paramref name="attempt"/> until it succeeds, again with backoff while the database is
    /// unreachable (<see cref="IsTransient"/>), for up to <paramref name="limit"/>; past it the last error
    /// is thrown. The journal's and the snapshot store's calls ride out outages through it, and so do the
    /// commands' writes that must not be lost to a restart (a run's record of its end).</summary>
    public static async Task<T> RideOut<T>(Func<Task<T>> attempt, TimeSpan limit, Watcher watcher)
    {
        var started = DateTime.UtcNow;
        var delay = TimeSpan.FromMilliseconds(100);
        var announced = false;
        while (true)
        {
            try
            {
                var result = await attempt().ConfigureAwait(false);
                if (announced) watcher.Back();
                return result;
            }
            catch (Exception e) when (TransientCause(e) is { } cause)
            {
                if (DateTime.UtcNow - started > limit)
                {
                    watcher.GivenUp(DateTime.UtcNow - started, cause);
                    throw;
                }
                if (!announced) watcher.Outage(cause);
                announced = true;
                await Task.Delay(delay).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
            }
        }
    }

    /// <summary>A lost or refused connection, not a rejected statement (a conflict is not transient).</summary>
    public static bool IsTransient(Exception e) => TransientCause(e) is not null;

    /// <summary>The exception in <paramref name="e"/>'s chain that makes it a lost or refused connection,
    /// the one an outage's news names: a commit cut by a restart fails with Npgsql's
    /// <c>ObjectDisposedException: NpgsqlTransaction</c> over the <c>PostgresException</c> (57P01) that
    /// says what happened.</summary>
    public static Exception? TransientCause(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case Npgsql.PostgresException pg:
                    // 08: connection exception, 57P: operator intervention (shutdown), 53: insufficient resources
                    return pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState.StartsWith("57P", StringComparison.Ordinal) || pg.SqlState.StartsWith("53", StringComparison.Ordinal) ? pg : null;
                case Npgsql.NpgsqlException:
                case System.Net.Sockets.SocketException or TimeoutException or IOException:
                    return x;
            }
        }
        return null;
    }
}
