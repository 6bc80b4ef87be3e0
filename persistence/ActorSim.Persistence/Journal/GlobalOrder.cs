using Marten;
using JasperFx.Events;
using Npgsql;

namespace ActorSim.Persistence.Journal;

/// <summary>Reading every event in global order (Marten's seq_id) without skipping any.
/// <para>PostgreSQL hands out sequence numbers when rows are inserted, but transactions commit in
/// any order: a reader that has seen seq 11 may later see seq 10 commit. A reader that meets a gap
/// therefore waits (<see cref="BarrierAsync"/>) until every transaction that had begun when the gap
/// was seen has ended: a transaction takes its sequence numbers after it begins, so after the
/// barrier a number below the highest one seen is either visible or was rolled back and will never
/// appear, and is stepped over.</para></summary>
public static class GlobalOrder
{
    /// <summary>Waits until every other transaction of this database that is open now has ended.</summary>
    public static async Task BarrierAsync(IDocumentStore store, CancellationToken ct = default, TimeSpan? timeout = null)
    {
        await using var session = store.QuerySession();
        var conn = await session.OpenConnectionAsync(ct).ConfigureAwait(false);
        DateTime now;
        await using (var t = new NpgsqlCommand("select clock_timestamp()", conn)) now = (DateTime)(await t.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        // pg_stat_activity is a snapshot per transaction: clear it before each look.
        await using var clear = new NpgsqlCommand("select pg_stat_clear_snapshot()", conn);
        await using var cmd = new NpgsqlCommand(
            "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() " +
            "and backend_type = 'client backend' and xact_start is not null and xact_start < @t", conn);
        cmd.Parameters.AddWithValue("t", now);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        for (var delay = 1; ; delay = Math.Min(delay * 2, 50))
        {
            await clear.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            if ((long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))! == 0) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("a transaction stayed open past the global-order barrier's timeout");
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The next events after global sequence <paramref name="after"/>, in order, with no
    /// event skipped: stops before a gap unless a barrier shows the gap is permanent.</summary>
    public static async Task<IReadOnlyList<IEvent>> ReadAfterAsync(IDocumentStore store, long after, int max, CancellationToken ct = default)
    {
        var page = await Page(store, after, max, ct).ConfigureAwait(false);
        var safe = ContiguousPrefix(page, after);
        if (safe.Count == page.Count) return page;
        // A gap: wait for appends in flight, then read again. Numbers up to what we saw before the
        // barrier are now final: those still missing were rolled back.
        var highestSeen = page[^1].Sequence;
        await BarrierAsync(store, ct).ConfigureAwait(false);
        page = await Page(store, after, max, ct).ConfigureAwait(false);
        return page.Where(e => e.Sequence <= highestSeen).ToList();
    }

    private static List<IEvent> ContiguousPrefix(IReadOnlyList<IEvent> page, long after)
    {
        var result = new List<IEvent>();
        var next = after + 1;
        foreach (var e in page)
        {
            if (e.Sequence != next) break;
            result.Add(e);
            next++;
        }
        return result;
    }

    private static async Task<IReadOnlyList<IEvent>> Page(IDocumentStore store, long after, int max, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        return await session.Events.QueryAllRawEvents().Where(e => e.Sequence > after).OrderBy(e => e.Sequence).Take(max).ToListAsync(ct).ConfigureAwait(false);
    }
}
