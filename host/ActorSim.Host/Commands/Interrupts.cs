using System.Runtime.InteropServices;

namespace ActorSim.Host.Commands;

/// <summary>Clean-up for a command that a signal ends at once: SIGINT (Ctrl-C), SIGTERM or SIGHUP with
/// no drain of the command's own (<c>export</c>; <c>run</c> on its second signal, or on a hang-up) ends the process with
/// the signal's exit (130, 143, 129), and neither <c>finally</c> nor <c>Dispose</c> runs.</summary>
internal static class Interrupts
{
    private static readonly PosixSignal[] Ending = [PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP];

    /// <summary>Runs <paramref name="cleanUp"/> when one of those signals comes (or of
    /// <paramref name="signals"/>, when given), then lets it end the process, until disposed.</summary>
    public static IDisposable CleanUpOn(Action cleanUp, params PosixSignal[] signals) =>
        new Registrations([.. (signals.Length > 0 ? signals : Ending).Select(s => PosixSignalRegistration.Create(s, _ => cleanUp()))]);

    private sealed class Registrations(PosixSignalRegistration[] registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var r in registrations) r.Dispose();
        }
    }
}
