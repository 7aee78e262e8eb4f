---------------------------- MODULE PhotoSessions ----------------------------
(***************************************************************************)
(* The replication protocol of one photo event, AS BUILT in domain/:       *)
(* two-phase commit with presumed abort between the sites. Every site has  *)
(* a participant (domain/participant.py, over domain/event_state.py and    *)
(* domain/admission.py) and a coordinator (domain/coordinator.py, with     *)
(* domain/vote_tally.py); web/service.py starts the transactions.          *)
(*                                                                         *)
(* Transactions: CreateEvent (the home site coordinates), AddPhotos (the   *)
(* upload site coordinates, on a base version), StartRound (home; freezes  *)
(* the version) and Publish, the collection of a round (home; every yes    *)
(* carries the ballots cast at that site and closes voting there).         *)
(*                                                                         *)
(* Round requests (web/round_start.py, since commit c30c609): a first      *)
(* accept at any site makes a request there and asks the home site for a   *)
(* round; the StartRound carries the request and that accept, and its      *)
(* commit opens the round with it. The voter's site settles the request:   *)
(* before any definite "no round" it stores Withdrawn, and its participant *)
(* then refuses every StartRound of that request (TruthfulRefusal).        *)
(*                                                                         *)
(* Ship, then commit (web/peers/blob_shipping.py, blob_api.py): an        *)
(* upload's photo files are sent to every site before its 2PC; a site      *)
(* votes yes only holding them (missing_photos otherwise), and its sweep   *)
(* (eventstore/blob_sweep.py) removes only files nothing there names.      *)
(* held[s] is what site s holds; Ship and Sweep act at any time.           *)
(*                                                                         *)
(* Durable state is what each role folds from its log (domain/records.py): *)
(* Prepared/Refused/Committed/Aborted/VoteCast for a participant, Began/   *)
(* Decided/Reported for a coordinator. A crash loses everything else (the  *)
(* coordinator's yes votes and the ballots they carried, timers, messages  *)
(* received and not yet handled); Recover then aborts every transaction    *)
(* the site coordinates and never decided, resends decisions, asks about   *)
(* what its participant holds prepared, and re-arms the round deadline.    *)
(* A create's or an upload's prepares go while its Began is being stored   *)
(* (presumed abort), so a crash may lose that Began: the coordinator then  *)
(* knows nothing of the transaction and, asked, answers that it aborted.   *)
(*                                                                         *)
(* The network is a set of messages. Delivering a message does not        *)
(* consume it, so a message may be delivered any number of times, in any   *)
(* order, or never (lost): no bound on copies is needed, and every resend  *)
(* is covered (ResendDecision, AskOutcome, the deadline timer re-armed at  *)
(* Recover), as is every transport failure (Unreachable, as the            *)
(* coordinator's PrepareTimeout, may abort a transaction at any time while *)
(* it prepares, MaxTimeouts times). A message leaves the network only when *)
(* no step can ever read it again (SendVote says which).                   *)
(* A site that is down is a site that takes no steps for a while.          *)
(*                                                                         *)
(* Time is abstract: each StartRound's deadline passes when the Deadline   *)
(* action says so; a ballot records whether it was cast before it.         *)
(*                                                                         *)
(* Where a variable or message would only tell apart states that behave    *)
(* alike (something no step reads again), the spec leaves it out; each     *)
(* place says why. That keeps the state space small enough for TLC.       *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Sites,        \* the sites (model values)
    Home,         \* the event's home site: it creates the event and runs its rounds
    Users,        \* people (model values)
    Photos,       \* photo contents (model values)
    PhotoOwners,  \* {<<photo, user>>}: who uploads which photo (one owner per photo)
    UploadSites,  \* the sites where uploads begin
    FromScratch,  \* TRUE: behaviours start before the event exists (the create is checked)
    StartVersions,\* and/or with the event created everywhere and v photos committed
                  \* everywhere, for each v in this set (TLC checks from every start)
    MaxPhotos,    \* uploads stop at this version
    MaxNewTxns,   \* transactions begun after the create (uploads, starts, collections)
    MaxRounds,    \* round numbers stop at this
    MaxBallots,   \* ballots cast per round, all sites together
    MaxCrashes,   \* crash-restarts of a site (all sites together)
    MaxTimeouts,  \* prepare timeouts (a site unreachable, or slow), all coordinators together
    MaxRequests,  \* round requests (first accepts that ask for a round), all sites together
    ShipTo,       \* the sites whose photo files travel on their own (Ship, Sweep: late, never,
                  \* swept, lost); at the others every shipment has arrived when the upload
                  \* begins (the ship step succeeded: the bytes are there before the 2PC)
    LatePrepares, \* TRUE: a collection attempt's prepare may reach a site after the attempt was
                  \* decided (as any message may); FALSE: not (a reduction: such a prepare only
                  \* delays, see ReceivePrepare; it keeps liveness checking within reach)
    ConcurrentStarts, \* TRUE: the home site serves round requests concurrently (one task per
                  \* request id, as voting.start_round does), so StartRounds of one round number
                  \* may prepare at once; FALSE: one transaction at a time (a workload bound)
    BUG           \* "none": the protocol as built. Deliberately broken variants, which TLC
                  \* must catch (tests/model/test_tlc.py):
                  \* "publish_without_one_site": the coordinator tallies a collection
                  \*     without the ballots that one site's yes carried;
                  \* "reopen_ended_round": a StartRound commit opens its round even if the
                  \*     abort of that round's collection overtook it (the participant before
                  \*     commit f8e7b7e, which did not remember ended rounds);
                  \* "admit_withdrawn": a participant votes yes on the StartRound of a request
                  \*     it has withdrawn (admission without the request_spent refusal);
                  \* "yes_without_photos": a participant votes yes on an upload whatever files
                  \*     its site holds (no missing_photos refusal);
                  \* "sweep_prepared": the sweep removes files that only a prepared
                  \*     transaction names (names_in without state.prepared);
                  \* "end_on_first_failed_attempt": a collection attempt that fails for a
                  \*     site's sake ends the round (reason unreachable at once: the
                  \*     coordinator before collection attempts); caught by UnanimousPublishes;
                  \* "old_race": that, and no Implies (the participant before
                  \*     _start_implied_by): the StartRound commit has not reached a site when
                  \*     the collection's prepare does, and the round is lost (the 18-state
                  \*     trace of tracker issue 12); caught by UnanimousPublishes;
                  \* "refusal_answers_reason": a site in doubt on a collection attempt applies
                  \*     the abort a peer that refused it answers (with the peer's refusal
                  \*     reason, read as final), the participant's _on_outcome without its
                  \*     check; caught by UnanimousPublishes;
                  \* "vote_anywhere": a person's vote is stored at any site, not only at their
                  \*     ballot site (admission without not_ballot_site); caught by OneBallot;
                  \* "publish_on_first_accept": the tally publishes once any submitter has
                  \*     accepted (domain/vote_tally.py testing "some" where it means "every");
                  \*     caught by Validity alone

NoTxn == 0
\* Txn 1 is the create (begun, or there from the start); MaxNewTxns more (uploads, round
\* starts); and the collections, which that budget does not count: one per round, and one
\* more per failed attempt (each needs a crash or a timeout: a participant refuses a
\* collection only once its round ended there, or in the broken variants).
MaxCollections == MaxRounds + MaxCrashes + MaxTimeouts
TxnIds == 1..(MaxNewTxns + 1 + MaxCollections)
ACCEPT == "accept"
REJECT == "reject"

Owner(p) == CHOOSE u \in Users : <<p, u>> \in PhotoOwners

RECURSIVE Order(_)
Order(set) == IF set = {} THEN <<>>
              ELSE LET x == CHOOSE y \in set : TRUE IN <<x>> \o Order(set \ {x})

ASSUME /\ Home \in Sites /\ UploadSites \subseteq Sites
       /\ PhotoOwners \subseteq Photos \X Users
       /\ \A p \in Photos : \E u \in Users : <<p, u>> \in PhotoOwners
       /\ \A o1, o2 \in PhotoOwners : o1[1] = o2[1] => o1 = o2
       /\ FromScratch \in BOOLEAN /\ StartVersions \subseteq 0..MaxPhotos
       /\ MaxPhotos <= Cardinality(Photos)
       /\ MaxNewTxns \in Nat /\ MaxRounds \in Nat /\ MaxBallots \in Nat
       /\ MaxCrashes \in Nat /\ MaxTimeouts \in Nat /\ MaxRequests \in Nat
       /\ ConcurrentStarts \in BOOLEAN /\ ShipTo \subseteq Sites /\ LatePrepares \in BOOLEAN
       /\ BUG \in {"none", "publish_without_one_site", "reopen_ended_round", "admit_withdrawn",
                  "yes_without_photos", "sweep_prepared", "end_on_first_failed_attempt",
                  "old_race", "refusal_answers_reason", "vote_anywhere",
                  "publish_on_first_accept"}

VARIABLES
    \* --- each site's participant: the fold of its PhotoEvent log (EventState) ---
    exists,     \* EventState.exists
    photos,     \* EventState.photos: a sequence of [photo, user]; its length is the version
    prepared,   \* EventState.prepared: the transaction this site voted yes on, or NoTxn
    refused,    \* EventState.answers with a reason: its no votes (Refused records)
    committed,  \* EventState.outcomes, True (Committed records)
    aborted,    \* EventState.outcomes, False (Aborted records)
    retried,    \* the Aborted records whose reason is retry (collection attempts only)
    round,      \* EventState.round: the StartRound transaction whose round runs here, or NoTxn
    rounds,     \* EventState.rounds
    ended,      \* EventState.ended: round numbers whose collection was decided here
    ballots,    \* its VoteCast records: the ballots cast here, every round
    published,  \* EventState.published_version, as the Publish transaction that set it, or NoTxn
    withdrawn,  \* EventState.withdrawn: the round requests given up here (Withdrawn records)
                \* (EventState.started is Started(s), a function of committed)
    \* --- each site's coordinator: the fold of its Coordination log (CoordinatorState) ---
    txns,       \* txns[t]: the payload of Began(t), stored at site txns[t].coord
    decided,    \* decided[t]: Decided(t) at txns[t].coord: "none" (preparing), "commit", "abort",
                \* or "retry" (an aborted collection attempt whose reason is RETRY: the round goes
                \* on; every other abort of a collection ends it); or "forgot": a crash lost t's
                \* Began (a create or an upload, SentFirst), so the coordinator has no record of t
    active,     \* the home coordinator's ActiveRound: its StartRound transaction, or NoTxn
    collecting, \* ActiveRound.collecting
    reported,   \* ActiveRound.reported (Reported records)
    \* --- environment ---
    net,        \* the messages in flight (see above)
    late,       \* the StartRound transactions whose deadline has passed
    over,       \* ... and whose grace period after the deadline is over too (collect_grace_s)
    crashes,    \* crashes so far (bounded by MaxCrashes)
    timeouts,   \* prepare timeouts so far (bounded by MaxTimeouts)
    start,      \* the start this behaviour began from (never changes)
    reqs,       \* the round requests made so far: reqs[i] is request i, made at the voter's
                \* site (web/round_start.py RoundStart: its site, the voter, the version)
    held,       \* held[s]: the photos whose files site s holds (data_dir/site-k/photos/, the
                \* whole file, its sha256 checked: eventstore/photo_files.py PhotoFiles)
    \* --- history, for Finality: Decided records per transaction; Publish commits applied
    \*     per site ---
    decCount,
    pubCount

partVars  == <<exists, photos, prepared, refused, committed, aborted, retried, round, rounds,
               ended, ballots, published, withdrawn, pubCount>>
coordVars == <<txns, decided, active, collecting, reported, decCount>>
env       == <<late, over, crashes, timeouts, start, reqs, held>>
vars      == <<partVars, coordVars, net, env>>

-----------------------------------------------------------------------------
(* Helpers *)

Max(a, b) == IF a > b THEN a ELSE b
Begun == 1..Len(txns)
Budget == MaxNewTxns + 1   \* transactions other than collections: the create and MaxNewTxns
Spent == Cardinality({t \in Begun : txns[t].kind # "publish"})
Collections == Cardinality({t \in Begun : txns[t].kind = "publish"})
Coord(t) == txns[t].coord
Kind(t) == txns[t].kind
Version(s) == Len(photos[s])
SubmittersOf(seq) == {seq[i].user : i \in 1..Len(seq)}
Submitters(s) == SubmittersOf(photos[s])
RoundNo(s) == txns[round[s]].r                       \* only when round[s] # NoTxn
Collecting(s) == prepared[s] # NoTxn /\ Kind(prepared[s]) = "publish"  \* EventState.collecting
RoundBallots(r) == UNION {{b \in ballots[s] : b.r = r} : s \in Sites}   \* at every site
\* admission.ballot_site: the site where u's first photo in the event was uploaded (every site
\* knows it from its photo list; SameHistory makes it the same everywhere).
BallotSite(s, u) ==
    photos[s][CHOOSE i \in 1..Version(s) :
                 photos[s][i].user = u /\ \A j \in 1..(i - 1) : photos[s][j].user # u].site
\* The collection attempts of the round that StartRound st opened (round_master ActiveRound.attempts).
Attempts(st) == Cardinality({t \in Begun : txns[t].kind = "publish" /\ txns[t].start = st})
IsPrefix(a, b) == Len(a) <= Len(b) /\ SubSeq(b, 1, Len(a)) = a
Requests == 1..Len(reqs)
\* EventState.started: the requests whose StartRound committed here (the round it opened)
Started(s) == {txns[t].req : t \in {x \in committed[s] : Kind(x) = "start"}}
StartsOf(q) == {t \in Begun : Kind(t) = "start" /\ txns[t].req = q}

Ballot(r, u, d, s, before) == [r |-> r, user |-> u, d |-> d, site |-> s, before |-> before]

\* domain/vote_tally.py tally(): counted = ballots cast by the deadline; any reject vetoes;
\* publish needs an accept from every submitter; otherwise abort (final) or pending. (With BUG
\* "publish_on_first_accept", an accept from any one submitter is enough.)
Tally(subs, bals, final) ==
    LET counted == {b \in bals : b.before}
        accepted == {b.user : b \in {x \in counted : x.d = ACCEPT}}
    IN  IF \E b \in counted : b.d = REJECT THEN "abort"
        ELSE IF subs \subseteq accepted THEN "publish"
        ELSE IF BUG = "publish_on_first_accept" /\ subs \cap accepted # {} THEN "publish"
        ELSE IF final THEN "abort" ELSE "pending"

PrepareMsg(t) == [k |-> "prepare", t |-> t]
VoteMsg(t, s, yes, bs) == [k |-> "vote", t |-> t, site |-> s, yes |-> yes, ballots |-> bs]
DecisionMsg(t, d) == [k |-> "decision", t |-> t, d |-> d]   \* d: "commit", "abort" or "retry"
ReportMsg(b) == [k |-> "report", ballot |-> b]

\* A message that no step will ever read again only tells states apart that behave alike: a
\* vote on a transaction its coordinator has decided (decisions are final), a report for a
\* round the home site takes no more reports for (not its active round, or its collection
\* began). Such messages are not added to the network, and leave it when they become so
\* (Decided, Collect). What stays is then a function of the logs: the prepares of the
\* transactions begun, the decisions taken, the votes on undecided transactions, the reports
\* of the round being collected.
\* Vote reports are at-least-once (participant._on_unreachable arms ReportAgain until the
\* home site's ReportAck, _on_report_ack; a restarted site reports again): the network keeps
\* a report until the home site stored it or no step reads it, which is that resend. Once the
\* first collection attempt of a round began, the home site reads no report of it (a report
\* may still start the next attempt after a retry, as CollectAgain does anyway: the same step).
SendVote(m) == net' = IF decided[m.t] = "none" THEN net \cup {m} ELSE net
ReportReadable(b) == active # NoTxn /\ ~collecting /\ txns[active].r = b.r /\ Attempts(active) = 0
SendReport(b) == net' = IF ReportReadable(b) THEN net \cup {ReportMsg(b)} ELSE net
Unread(ts) == {m \in net : m.k = "vote" /\ m.t \in ts}
Reports == {m \in net : m.k = "report"}

-----------------------------------------------------------------------------
(* Coordinator *)

\* The kinds whose prepares go while their Began is stored, not after (coordinator.
\* SENT_BEFORE_BEGAN, Step.send_first): a crash may lose such a Began (Crash).
SentFirst == {"create", "upload"}

\* coordinator._on_begin: store Began, then send the Prepare to every site (itself included);
\* for SentFirst, the Prepare goes while Began is stored, which this one step also covers.
\* An upload's or a round start's goes to the home site first and to the others once it voted
\* yes (Begin.first): a site reading the prepare only later is a behaviour of this network.
\* Collections are bounded apart (MaxCollections), other transactions by Budget.
BeginDropping(payload, drop) ==
    /\ IF payload.kind = "publish" THEN Collections < MaxCollections ELSE Spent < Budget
    /\ txns' = Append(txns, payload)
    /\ net' = (net \ drop) \cup {PrepareMsg(Len(txns) + 1)}
Begin(payload) == BeginDropping(payload, {})

\* coordinator._decide and the fold of Decided: store the decision, then send it to every site;
\* it is resent until acknowledged (the network keeps it). dec maps each transaction decided
\* to "commit", "abort" or "retry". A collection attempt decided commit or abort ends the
\* active round; one decided retry leaves it active and not collecting (round_master.
\* after_collection; CollectAgain follows); a committed StartRound makes its round the active
\* one (round_master.opened). dec may also map a transaction to "forgot" (Crash): nothing is
\* stored or sent for it, and no vote on it is read again.
DecideEach(dec) ==
    LET ts == DOMAIN dec
        stored == {t \in ts : dec[t] # "forgot"} IN
    /\ decided' = [t \in TxnIds |-> IF t \in ts THEN dec[t] ELSE decided[t]]
    /\ decCount' = [t \in TxnIds |-> IF t \in stored THEN decCount[t] + 1 ELSE decCount[t]]
    /\ net' = (net \ (Unread(ts) \cup (IF \E t \in ts : Kind(t) = "publish" THEN Reports ELSE {})))
              \cup {DecisionMsg(t, dec[t]) : t \in stored}
    /\ IF \E t \in ts : Kind(t) = "publish" /\ dec[t] # "retry"
         THEN /\ active' = NoTxn /\ collecting' = FALSE /\ reported' = {}
         ELSE IF \E t \in ts : Kind(t) = "publish"
         THEN /\ collecting' = FALSE /\ UNCHANGED <<active, reported>>
         ELSE IF \E t \in ts : Kind(t) = "start" /\ dec[t] = "commit"
         THEN LET st == CHOOSE t \in ts : Kind(t) = "start" /\ dec[t] = "commit" IN
              /\ active' = st
              /\ collecting' = FALSE
              /\ reported' = {txns[st].ballot}   \* the opening accept counts at once
         ELSE UNCHANGED <<active, collecting, reported>>

\* round_master.abort_reason: what the abort of transaction t says when it fails for a site's
\* sake (a participant refused it, a prepare unanswered, this site restarted with t undecided).
\* For a collection attempt: retry while the home site's clock is before the deadline plus
\* the grace period (collect_grace_s), unreachable (final: "abort") after it. (With BUG
\* "end_on_first_failed_attempt" or "old_race", always final, as before collection attempts.)
FailedAs(t) ==
    IF Kind(t) = "publish" /\ txns[t].start \notin over
       /\ BUG \notin {"end_on_first_failed_attempt", "old_race"}
      THEN "retry" ELSE "abort"
Fail(ts) == DecideEach([t \in ts |-> FailedAs(t)])
Decide(t, c) == DecideEach([x \in {t} |-> IF c THEN "commit" ELSE "abort"])

BeginCreate ==   \* service.create_event at the home site
    /\ txns = <<>>
    /\ Begin([coord |-> Home, kind |-> "create"])
    /\ UNCHANGED <<partVars, decided, active, collecting, reported, decCount, env>>

\* The workload: each site serves one request that begins a transaction (an upload, a round
\* start) at a time, and a photo is uploaded again only after its last attempt aborted (the
\* service's retry loop; the person may retry at another site). Sites still run their
\* requests concurrently with each other, and with collections.
Serving(c) ==
    \E t \in Begun : Coord(t) = c /\ Kind(t) \in {"upload", "start"} /\ decided[t] = "none"
PhotoLive(p) == \E t \in Begun : Kind(t) = "upload" /\ txns[t].photo = p /\ decided[t] \notin {"abort", "forgot"}

\* service.add_photos at site c: the photo goes on the version c has committed (a retry after
\* a conflict, or after a site said missing_photos, is a new transaction, on the version c has
\* then). Ship, then commit: c stores the file first (store_file), then ships it to every peer
\* (service.ship), then begins the 2PC. At the sites outside ShipTo the shipment has arrived
\* by then; at those in ShipTo it may arrive at any time, or never (Ship), and the file may go
\* (Sweep). (c is taken to hold the file at every attempt: a person's retry stores it again,
\* and the upload site's own retry follows a prepare that claimed the file there, resetting
\* its age, so no sweep takes it within the grace period.)
BeginUpload(c, p) ==
    /\ ~Serving(c) /\ ~PhotoLive(p)
    /\ exists[c] /\ published[c] = NoTxn /\ round[c] = NoTxn
    /\ Version(c) < MaxPhotos
    /\ p \notin {photos[c][i].photo : i \in 1..Version(c)}
    /\ Begin([coord |-> c, kind |-> "upload", base |-> Version(c), photo |-> p, user |-> Owner(p)])
    /\ held' = [s \in Sites |-> IF s = c \/ s \notin ShipTo THEN held[s] \cup {p} ELSE held[s]]
    /\ UNCHANGED <<partVars, decided, active, collecting, reported, decCount, late, over, crashes,
                   timeouts, start, reqs>>

\* voting.vote at site v, when admission.starts_round (a submitter's accept on an open event):
\* web/round_start.py RoundStart makes a request id here and the ballot (an accept, cast now,
\* before any deadline of the round it asks for), and sends RoundRequest to the home site. The
\* network keeps the request: the home site may serve it (BeginStartRound) at any time, any
\* number of times (a retry, a late copy, a duplicate), so no message is needed for it.
\* (Once the transaction budget is spent, no StartRound of a new request can begin: such a
\* request, and its withdrawal, would only tell apart states that behave alike; none is made.)
MakeRequest(v, u) ==
    /\ Len(reqs) < MaxRequests /\ Spent < Budget
    /\ exists[v] /\ round[v] = NoTxn /\ published[v] = NoTxn /\ u \in Submitters(v)
    /\ v = BallotSite(v, u)   \* an accept cast elsewhere is forwarded to the ballot site
    /\ reqs' = Append(reqs, [site |-> v, user |-> u, version |-> Version(v)])
    /\ UNCHANGED <<partVars, coordVars, net, late, over, crashes, timeouts, start, held>>

\* participant._on_withdraw, asked by RoundStart._withdraw at the voter's site when it gives
\* up the request (budget over, the home site refused, another round runs: any time here).
\* IN_DOUBT (its StartRound prepared here) and STARTED (committed here) store nothing; a request
\* already withdrawn is answered WITHDRAWN again: those steps change nothing and are left out.
\* Nor is a withdrawal that no later step reads (states that behave alike): Withdrawn(q) is
\* read only by the admission of q's StartRounds here, so it matters only while one of them
\* may still prepare here (begun, not yet answered or decided here) or a new one may begin
\* (budget left, and the home site has not started q). TruthfulRefusal holds anyway in the
\* states left out: all of q's StartRounds are then aborted or refused here.
MayPrepare(v, q) ==
    \/ \E t \in StartsOf(q) : t \notin committed[v] \cup aborted[v] \cup refused[v]
    \/ Spent < Budget /\ q \notin Started(Home) /\ rounds[Home] < MaxRounds
Withdraw(v, q) ==
    /\ reqs[q].site = v
    /\ MayPrepare(v, q)
    /\ q \notin withdrawn[v]
    /\ ~(prepared[v] # NoTxn /\ Kind(prepared[v]) = "start" /\ txns[prepared[v]].req = q)
    /\ q \notin Started(v)
    /\ withdrawn' = [withdrawn EXCEPT ![v] = @ \cup {q}]
    /\ UNCHANGED <<exists, photos, prepared, refused, committed, aborted, retried, round, rounds,
                   ended, ballots, published, pubCount, coordVars, net, env>>

\* voting.start_round / _start_round at the home site, serving request q (a RoundRequest, or
\* the voter's own call when the voter's site is home): unless q already started a round
\* there, a round runs there or the event moved on, a StartRound of round rounds + 1 on the
\* home site's version and submitters, carrying q and its ballot. A retry after a conflict is
\* a new transaction. Copies of one request share one task (Voting._starting): one StartRound
\* of q prepares at a time. Different requests run concurrently if ConcurrentStarts.
BeginStartRound(q) ==
    /\ IF ConcurrentStarts THEN \A t \in StartsOf(q) : decided[t] # "none"
                           ELSE ~Serving(Home)
    /\ exists[Home] /\ round[Home] = NoTxn /\ published[Home] = NoTxn
    /\ q \notin Started(Home) /\ Version(Home) = reqs[q].version
    /\ rounds[Home] < MaxRounds
    /\ Begin([coord |-> Home, kind |-> "start", r |-> rounds[Home] + 1,
              version |-> Version(Home), subs |-> Submitters(Home), req |-> q,
              ballot |-> Ballot(rounds[Home] + 1, reqs[q].user, ACCEPT, reqs[q].site, TRUE)])
    /\ UNCHANGED <<partVars, decided, active, collecting, reported, decCount, env>>

\* coordinator._collect (round_master ActiveRound.next_attempt): the Publish transaction of
\* the active round, attempt k + 1 after k attempts (its id "{home}-r{round}-c{attempt}": a
\* transaction here is named by its round and attempt alike). Once collecting, the coordinator
\* reads no more reports (see ReportReadable): they are dropped, and so is what it counted.
CollectPayload(st, k) == [coord |-> Home, kind |-> "publish", start |-> st, r |-> txns[st].r,
                          attempt |-> k, version |-> txns[st].version, subs |-> txns[st].subs]
Collect ==
    /\ BeginDropping(CollectPayload(active, Attempts(active) + 1), Reports)
    /\ collecting' = TRUE
    /\ reported' = {}

\* coordinator._on_round_deadline (round_master.on_round_deadline; the timer, re-armed by
\* Recover from the stored deadline): attempt 1 at the deadline.
CollectAtDeadline ==
    /\ active # NoTxn /\ ~collecting /\ active \in late /\ Attempts(active) = 0
    /\ Collect
    /\ UNCHANGED <<partVars, decided, active, decCount, env>>

\* coordinator._on_collect_again (round_master.on_collect_again; the CollectAgain timer that
\* retry_timer arms after a retry abort, with a back-off; round_master.recover after a
\* restart): attempt k + 1 of the active round once attempt k was decided retry.
CollectAgain ==
    /\ active # NoTxn /\ ~collecting /\ Attempts(active) > 0
    /\ Collect
    /\ UNCHANGED <<partVars, decided, active, decCount, env>>

\* coordinator._on_vote on the last yes of a StartRound whose opening accept decides: Decided
\* (commit; the round is active, its opening ballot reported), then its collection begins.
CommitStartAndCollect(t) ==
    /\ decided' = [decided EXCEPT ![t] = "commit"]
    /\ decCount' = [decCount EXCEPT ![t] = @ + 1]
    /\ txns' = Append(txns, CollectPayload(t, 1))
    /\ net' = (net \ (Unread({t}) \cup Reports)) \cup {DecisionMsg(t, "commit"), PrepareMsg(Len(txns) + 1)}
    /\ active' = t /\ collecting' = TRUE /\ reported' = {}

\* coordinator._on_vote_report (round_master.on_vote_report): store Reported (once per
\* person), acknowledge it (ReportAck), collect at once if the reports decide. A report the
\* home site does not read (its round not open there, or collecting) is acknowledged too: its
\* vote reaches the collection in its site's prepare answer. (Acknowledgements are left out:
\* they only stop the resends, and the network keeps the report.)
ReceiveReport(m) ==
    /\ m.k = "report"
    /\ active # NoTxn /\ ~collecting /\ txns[active].r = m.ballot.r /\ Attempts(active) = 0
    /\ ~\E b \in reported : b.user = m.ballot.user
    /\ IF Tally(txns[active].subs, reported \cup {m.ballot}, FALSE) = "pending"
         THEN /\ reported' = reported \cup {m.ballot}
              /\ UNCHANGED <<txns, net, collecting>>
         ELSE Collect
    /\ UNCHANGED <<partVars, decided, active, decCount, env>>

\* coordinator._on_vote takes votes one by one, keeping in memory (Txn.yes, Txn.ballots) the
\* sites that said yes and what they carried, and decides on the first no or the last yes.
\* Nothing else reads that memory and a crash aborts the transaction anyway, so here the
\* coordinator decides in one step on the votes in the network: abort on a no (for a
\* collection attempt: retry, or unreachable after the grace period, FailedAs); with a yes from
\* every site, commit, or for a collection what the tally of the ballots those yes votes
\* carried says: publish, or abort (rejected, timeout: final, whatever the clock) (with BUG
\* "publish_without_one_site", the ballots of all sites but one).
ReceiveNo(m) ==
    /\ m.k = "vote" /\ ~m.yes /\ decided[m.t] = "none"
    /\ Fail({m.t})
    /\ UNCHANGED <<partVars, txns, env>>

\* A site sends one yes per transaction while it is undecided (TypeOK checks it): a duplicate
\* carries the same ballots, since voting is closed at a site prepared on a collection.
YesVotes(t, s) == {m \in net : m.k = "vote" /\ m.t = t /\ m.site = s /\ m.yes}

\* A committed StartRound whose opening accept already decides the tally (one submitter) is
\* collected at once, in the same step (coordinator._on_vote's _collect_if_decided).
ReceiveYes(t) ==
    /\ decided[t] = "none"
    /\ \A s \in Sites : YesVotes(t, s) # {}
    /\ \E counted \in SUBSET Sites :   \* whose ballots the tally counts
         /\ \/ counted = Sites
            \/ BUG = "publish_without_one_site" /\ Cardinality(Sites \ counted) = 1
         /\ LET bs == UNION {m.ballots : m \in UNION {YesVotes(t, s) : s \in counted}}
                c == Kind(t) # "publish" \/ Tally(txns[t].subs, bs, TRUE) = "publish"
            IN  IF /\ c /\ Kind(t) = "start" /\ Collections < MaxCollections
                   /\ Tally(txns[t].subs, {txns[t].ballot}, FALSE) # "pending"
                  THEN CommitStartAndCollect(t)
                  ELSE Decide(t, c) /\ UNCHANGED txns
    /\ UNCHANGED <<partVars, env>>

\* coordinator._on_prepare_timeout / _on_unreachable (a Prepare not delivered): abort (for a
\* collection attempt: retry, or unreachable after the grace period, FailedAs).
Timeout(t) ==
    /\ decided[t] = "none"
    /\ timeouts < MaxTimeouts
    /\ timeouts' = timeouts + 1
    /\ Fail({t})
    /\ UNCHANGED <<partVars, txns, late, over, crashes, start, reqs, held>>

-----------------------------------------------------------------------------
(* Participant *)

OpenForChanges(s) ==   \* admission._open_for_changes is None
    exists[s] /\ published[s] = NoTxn /\ round[s] = NoTxn /\ prepared[s] = NoTxn

\* admission.refusal_reason(...) is None (the contributor limit is above |Users|). An upload
\* needs the photo's file here (web/service.py checked() looks, and claims it: CheckedPrepare's
\* missing; the refusal is missing_photos, stored like any other, so a duplicate prepare is
\* refused again even if the file arrived since). A StartRound
\* of a request withdrawn here, or that already started a round here, is refused
\* (request_spent); with BUG "admit_withdrawn", a withdrawn one is not.
RequestSpent(s, q) == (q \in withdrawn[s] /\ BUG # "admit_withdrawn") \/ q \in Started(s)
Admit(s, t) ==
    LET x == txns[t] IN
    CASE x.kind = "create"  -> ~exists[s] /\ prepared[s] = NoTxn
      [] x.kind = "upload"  -> OpenForChanges(s) /\ Version(s) = x.base
                               /\ (x.photo \in held[s] \/ BUG = "yes_without_photos")
      [] x.kind = "start"   -> ~RequestSpent(s, x.req) /\ OpenForChanges(s) /\ Version(s) = x.version
      [] x.kind = "publish" -> round[s] # NoTxn /\ RoundNo(s) = x.r /\ prepared[s] = NoTxn

\* participant._on_prepare's ballots_for: the running round's ballots, for a collection.
\* (The coordinator never reads the ballots of a no: none are sent with one here.)
BallotsFor(s, t) ==
    IF Kind(t) = "publish" /\ round[s] # NoTxn
      THEN {b \in ballots[s] : b.r = RoundNo(s)} ELSE {}

\* participant._start_implied_by: the Prepare of the collection t of round r from coordinator c
\* proves that the StartRound of round r this site holds prepared from c committed, if this
\* site has started no round r (rounds < r): c collects round r only after a StartRound of
\* round r committed, which needed this site's yes, and this site holds one transaction
\* prepared at a time. (Agreement checks the inference.)
\* (With BUG "old_race", no inference: the site refuses the collection, no_such_round.)
Implies(s, t) ==
    /\ Kind(t) = "publish" /\ prepared[s] # NoTxn
    /\ Kind(prepared[s]) = "start" /\ txns[prepared[s]].r = txns[t].r
    /\ Coord(prepared[s]) = Coord(t) /\ rounds[s] < txns[t].r
    /\ BUG # "old_race"

\* participant._attempt_superseded: the Prepare of attempt k' of round r's collection from
\* coordinator c proves that the attempt k < k' of round r from c that this site holds
\* prepared was decided retry (c begins attempt k + 1 only after deciding attempt k's abort
\* as a retry): the site stores that abort (reason retry) first, then handles the prepare.
Superseded(s, t) ==
    /\ Kind(t) = "publish" /\ prepared[s] # NoTxn
    /\ Kind(prepared[s]) = "publish" /\ txns[prepared[s]].r = txns[t].r
    /\ Coord(prepared[s]) = Coord(t) /\ txns[prepared[s]].attempt < txns[t].attempt

\* participant._on_prepare
\* (With LatePrepares FALSE, a collection attempt's prepare is not delivered once the attempt
\* is decided. Such a prepare only delays: a site that holds the attempt prepared or refused
\* is answered as before; a site that refuses it (a lock, or no round) stores a refusal no step
\* reads but a query, answered "none" as by a site that never heard of it; a site that admits
\* it closes voting until the decision, a query to the home site or the next attempt's
\* prepare (Superseded) releases it, all fair steps, the decision being a retry.)
ReceivePrepare(s, m) ==
    /\ m.k = "prepare"
    /\ LatePrepares \/ Kind(m.t) # "publish" \/ decided[m.t] = "none"
    /\ LET t == m.t IN
       IF prepared[s] = t THEN                    \* a duplicate: yes again
            /\ SendVote(VoteMsg(t, s, TRUE, BallotsFor(s, t)))
            /\ UNCHANGED partVars
       ELSE IF t \in refused[s] THEN              \* a duplicate: no again
            /\ SendVote(VoteMsg(t, s, FALSE, {}))
            /\ UNCHANGED partVars
       ELSE IF t \in committed[s] \cup aborted[s] THEN
            \* a yes given before the outcome came (answered yes again), or the abort overtook
            \* the prepare (answered no): t is decided, its coordinator reads no vote on it
            UNCHANGED <<partVars, net>>
       ELSE IF Implies(s, t) THEN
            \* store Committed(start) (applied as ApplyCommit does), then the collection's
            \* Prepared or Refused, as admission says of the state that commit made: the round
            \* opened with the start's ballot (yes, carrying it) or, if its collection's abort
            \* overtook it, did not (no: no_such_round)
            LET ts == prepared[s]
                x == txns[ts]
                opens == x.r \notin ended[s] \/ BUG = "reopen_ended_round"
            IN
            /\ committed' = [committed EXCEPT ![s] = @ \cup {ts}]
            /\ rounds' = [rounds EXCEPT ![s] = Max(@, x.r)]
            /\ IF opens
                 THEN /\ round' = [round EXCEPT ![s] = ts]
                      /\ ballots' = [ballots EXCEPT ![s] = @ \cup {x.ballot}]
                      /\ prepared' = [prepared EXCEPT ![s] = t]
                      /\ SendVote(VoteMsg(t, s, TRUE, {b \in ballots'[s] : b.r = x.r}))
                      /\ UNCHANGED refused
                 ELSE /\ prepared' = [prepared EXCEPT ![s] = NoTxn]
                      /\ refused' = [refused EXCEPT ![s] = @ \cup {t}]
                      /\ SendVote(VoteMsg(t, s, FALSE, {}))
                      /\ UNCHANGED <<round, ballots>>
            /\ UNCHANGED <<exists, photos, aborted, retried, ended, published, withdrawn,
                           pubCount>>
       ELSE IF Superseded(s, t) THEN
            \* store Aborted(k, retry) (applied as ApplyAbort does: the lock released, the
            \* round still running here), then the new attempt's Prepared or Refused, as
            \* admission says of the state that abort made
            LET k == prepared[s]
                admits == round[s] # NoTxn /\ RoundNo(s) = txns[t].r
            IN
            /\ aborted' = [aborted EXCEPT ![s] = @ \cup {k}]
            /\ retried' = [retried EXCEPT ![s] = @ \cup {k}]
            /\ IF admits
                 THEN /\ prepared' = [prepared EXCEPT ![s] = t]
                      /\ SendVote(VoteMsg(t, s, TRUE, BallotsFor(s, t)))
                      /\ UNCHANGED refused
                 ELSE /\ prepared' = [prepared EXCEPT ![s] = NoTxn]
                      /\ refused' = [refused EXCEPT ![s] = @ \cup {t}]
                      /\ SendVote(VoteMsg(t, s, FALSE, {}))
            /\ UNCHANGED <<exists, photos, committed, round, rounds, ended, ballots, published,
                           withdrawn, pubCount>>
       ELSE IF Admit(s, t) THEN                   \* store Prepared, then vote yes
            /\ prepared' = [prepared EXCEPT ![s] = t]
            /\ SendVote(VoteMsg(t, s, TRUE, BallotsFor(s, t)))
            /\ UNCHANGED <<exists, photos, refused, committed, aborted, retried, round, rounds,
                           ended, ballots, published, withdrawn, pubCount>>
       ELSE                                       \* store Refused, then vote no
            \* Of any transaction but a collection, a Refused record means to every later step
            \* what an Aborted one means (a query is answered abort, a duplicate prepare no,
            \* and the abort, when it comes, changes nothing more): the spec stores it as both,
            \* which merges states that behave alike. A refused collection still waits for
            \* its abort to end the round here, or not (retry).
            /\ refused' = [refused EXCEPT ![s] = @ \cup {t}]
            /\ aborted' = IF Kind(t) = "publish" THEN aborted
                          ELSE [aborted EXCEPT ![s] = @ \cup {t}]
            /\ SendVote(VoteMsg(t, s, FALSE, {}))
            /\ UNCHANGED <<exists, photos, prepared, committed, retried, round, rounds, ended,
                           ballots, published, withdrawn, pubCount>>
    /\ UNCHANGED <<coordVars, env>>

\* event_state.apply_commit, folding Committed(t) (t is the prepared transaction). A
\* StartRound opens its round with its ballot (the accept that asked for it); one whose round
\* already ended here (its collection's abort overtook it) opens nothing (its request is
\* started all the same: Started).
ApplyCommit(s, t) ==
    LET x == txns[t] IN
    /\ prepared' = [prepared EXCEPT ![s] = NoTxn]
    /\ committed' = [committed EXCEPT ![s] = @ \cup {t}]
    /\ CASE x.kind = "create" ->
              /\ exists' = [exists EXCEPT ![s] = TRUE]
              /\ UNCHANGED <<photos, round, rounds, ended, published, pubCount, ballots>>
         [] x.kind = "upload" ->
              /\ photos' = [photos EXCEPT ![s] = Append(@, [photo |-> x.photo, user |-> x.user,
                                                             site |-> x.coord])]
              /\ UNCHANGED <<exists, round, rounds, ended, published, pubCount, ballots>>
         [] x.kind = "start" ->
              /\ IF x.r \in ended[s] /\ BUG # "reopen_ended_round"
                   THEN UNCHANGED <<round, ballots>>
                   ELSE /\ round' = [round EXCEPT ![s] = t]
                        /\ ballots' = [ballots EXCEPT ![s] = @ \cup {x.ballot}]
              /\ rounds' = [rounds EXCEPT ![s] = Max(@, x.r)]
              /\ UNCHANGED <<exists, photos, ended, published, pubCount>>
         [] x.kind = "publish" ->
              /\ round' = [round EXCEPT ![s] = NoTxn]
              /\ ended' = [ended EXCEPT ![s] = @ \cup {x.r}]
              /\ published' = [published EXCEPT ![s] = t]
              /\ pubCount' = [pubCount EXCEPT ![s] = @ + 1]
              /\ UNCHANGED <<exists, photos, rounds, ballots>>
    /\ UNCHANGED <<refused, aborted, retried, withdrawn>>

\* event_state.fold of Aborted(t, payload): release the lock if t held it. apply_abort: an
\* aborted collection of round r not yet ended here ends it, even if it is not open yet (the
\* abort may overtake the round's start); it closes the round running here unless that is
\* another round. An abort whose reason is retry (d = "retry", a collection attempt) ends
\* nothing: the round still runs here (voting open again until its deadline: the lock is
\* released), or, not open here yet, will open. (last_outcome, which only the pages show, is
\* left out.)
ApplyAbort(s, t, d) ==
    LET r == txns[t].r
        retry == Kind(t) = "publish" /\ d = "retry"
        ends == Kind(t) = "publish" /\ r \notin ended[s] /\ ~retry
    IN
    /\ aborted' = [aborted EXCEPT ![s] = @ \cup {t}]
    /\ retried' = IF retry THEN [retried EXCEPT ![s] = @ \cup {t}] ELSE retried
    /\ prepared' = IF prepared[s] = t THEN [prepared EXCEPT ![s] = NoTxn] ELSE prepared
    /\ ended' = IF ends THEN [ended EXCEPT ![s] = @ \cup {r}] ELSE ended
    /\ round' = IF ends /\ ~(round[s] # NoTxn /\ RoundNo(s) # r)
                  THEN [round EXCEPT ![s] = NoTxn] ELSE round
    /\ UNCHANGED <<exists, photos, refused, committed, rounds, ballots, published, withdrawn,
                   pubCount>>

\* participant._conclude: a known outcome (d: "commit", "abort" or "retry"), stored once. A
\* commit of what is not prepared here is not applied (the Decision is still acknowledged: a
\* step that changes nothing).
Conclude(s, t, d) ==
    /\ t \notin committed[s] \cup aborted[s]
    /\ IF d = "commit" THEN prepared[s] = t /\ ApplyCommit(s, t)
                       ELSE ApplyAbort(s, t, d)

\* participant._on_decision
ReceiveDecision(s, m) ==
    /\ m.k = "decision"
    /\ Conclude(s, m.t, m.d)
    /\ UNCHANGED <<coordVars, net, env>>

\* What site q answers a Query about t, as the asker reads it: participant._on_query
\* (knows_outcome: an outcome with its stored reason, or a no vote with its refusal reason),
\* or when its participant does not know and q is t's coordinator (service.dispatch),
\* coordinator._on_query: its decision and reason, nothing while preparing, abort if it never
\* began t (presumed abort; every t here was begun, its Began is in the log). A refusal of a
\* collection attempt says it aborted, not whether as a retry: participant._on_outcome
\* ignores such an answer (its reason is neither retry nor a round ending) and asks again;
\* with BUG "refusal_answers_reason" it applies it as a final abort.
Known(q, t) ==
    IF t \in committed[q] THEN "commit"
    ELSE IF t \in aborted[q] THEN IF t \in retried[q] THEN "retry" ELSE "abort"
    ELSE IF t \in refused[q] /\ (Kind(t) # "publish" \/ BUG = "refusal_answers_reason")
      THEN "abort"
    ELSE IF t \in refused[q] THEN "none"
    ELSE IF q = Coord(t) THEN IF decided[t] = "forgot" THEN "abort" ELSE decided[t]
    ELSE "none"

\* participant._ask_around / _on_outcome: a site prepared on t asks t's coordinator and its
\* peers (on its AskOutcome timer, and at Recover) and applies an answer that knows. Asking
\* and applying are one step here: an answer is a durable fact (Agreement and Finality
\* below check that it never changes), so a late or repeated Outcome finds the same answer.
AskAround(p, q) ==
    /\ prepared[p] # NoTxn
    /\ LET t == prepared[p] IN
       /\ q \in {Coord(t)} \cup (Sites \ {p})
       /\ Known(q, t) # "none"
       /\ Conclude(p, t, Known(q, t))
    /\ UNCHANGED <<coordVars, net, env>>

\* participant._on_cast_vote, when admission.vote_refusal is None (a person voting on the
\* round's version at their ballot site: a vote cast at another site is forwarded there, and
\* is this step there; not_ballot_site otherwise, but with BUG "vote_anywhere"): store
\* VoteCast, answer, report to the home site (at least once: see ReportReadable).
CastVote(s, u, d) ==
    /\ exists[s] /\ published[s] = NoTxn /\ u \in Submitters(s)
    /\ BallotSite(s, u) = s \/ BUG = "vote_anywhere"
    /\ round[s] # NoTxn
    /\ ~\E b \in ballots[s] : b.r = RoundNo(s) /\ b.user = u      \* already_voted
    /\ ~Collecting(s) /\ round[s] \notin late                      \* voting_closed
    /\ Cardinality(RoundBallots(RoundNo(s))) < MaxBallots
    /\ LET b == Ballot(RoundNo(s), u, d, s, round[s] \notin late) IN
       /\ ballots' = [ballots EXCEPT ![s] = @ \cup {b}]
       /\ SendReport(b)
    /\ UNCHANGED <<exists, photos, prepared, refused, committed, aborted, retried, round, rounds,
                   ended, published, withdrawn, pubCount, coordVars, env>>

-----------------------------------------------------------------------------
(* Environment *)

\* The deadline of a committed StartRound passes: sites refuse votes from then on, and the
\* home site's RoundDeadline timer may fire. Nothing reads the deadline of a round before it
\* commits, so one that passes earlier is the same as one that passes at the commit.
Deadline(t) ==
    /\ Kind(t) = "start" /\ decided[t] = "commit" /\ t \notin late
    /\ late' = late \cup {t}
    /\ UNCHANGED <<partVars, coordVars, net, over, crashes, timeouts, start, reqs, held>>

\* The home site's clock passes the deadline plus collect_grace_s of its active round: from
\* then on a collection attempt that fails for a site's sake ends the round (unreachable).
\* Only FailedAs reads it, for the active round: a grace period that ends later than the
\* round is the same as one that never ends. Not a fair step (time may stop short of it).
Grace(t) ==
    /\ t = active /\ t \in late /\ t \notin over
    /\ over' = over \cup {t}
    /\ UNCHANGED <<partVars, coordVars, net, late, crashes, timeouts, start, reqs, held>>

\* A site crashes and restarts: its log is kept, its memory lost.
\* Its participant keeps nothing in memory that a step reads (Recover re-arms its queries:
\* AskAround). Its coordinator's Recover aborts what it began and never decided (presumed
\* abort) and resends the decisions (the network keeps them). Messages it had received and
\* not handled are lost: they are never delivered. The crash may have lost the Began of any
\* of those that are SentFirst (their prepares went before it was stored): the coordinator
\* forgets them ("forgot"), and their prepares may still be read.
Crash(s) ==
    /\ crashes < MaxCrashes
    /\ crashes' = crashes + 1
    /\ LET open == {t \in Begun : Coord(t) = s /\ decided[t] = "none"} IN
       /\ open # {}   \* otherwise nothing a step reads changes
       \* "coordinator_restarted": a collection attempt's abort is a retry (FailedAs)
       /\ \E gone \in SUBSET {t \in open : Kind(t) \in SentFirst} :
            DecideEach([t \in open |-> IF t \in gone THEN "forgot" ELSE FailedAs(t)])
    /\ UNCHANGED <<partVars, txns, late, over, timeouts, start, reqs, held>>

\* A SentFirst Began the store failed to write (the actor reloads without it, the site runs
\* on): the coordinator forgets t and tells every site to abort it (coordinator.recalled: not
\* stored, not resent; a site that misses it asks, and hears abort). A fault: bounded with
\* the crashes.
LoseBegan(t) ==
    /\ crashes < MaxCrashes
    /\ decided[t] = "none" /\ Kind(t) \in SentFirst
    /\ crashes' = crashes + 1
    /\ decided' = [decided EXCEPT ![t] = "forgot"]
    /\ net' = (net \ Unread({t})) \cup {DecisionMsg(t, "abort")}
    /\ UNCHANGED <<partVars, txns, active, collecting, reported, decCount, late, over, timeouts,
                   start, reqs, held>>

\* Photo files (ship, then commit). web/peers/blob_shipping.py sends a photo's files to a peer
\* (web/peers/blob_api.py keeps them once their sha256 checks); eventstore/blob_sweep.py removes
\* the files no committed photo and no prepared transaction names at the site. Both act at
\* any time, with no guard on locks, prepared transactions or rounds, before or after any
\* prepare: a slow, late or lost shipment (or one resent after missing_photos).
\* What names p at s: a committed photo, or the upload prepared here (blob_sweep.names_in;
\* with BUG "sweep_prepared", only committed photos).
Named(s, p) ==
    \/ p \in {photos[s][i].photo : i \in 1..Version(s)}
    \/ /\ prepared[s] # NoTxn /\ Kind(prepared[s]) = "upload" /\ txns[prepared[s]].photo = p
       /\ BUG # "sweep_prepared"
\* Only the prepare of an upload of p reads held[s] (Admit), so a file that arrives or goes
\* while none of p's uploads can still prepare here (or be prepared here) makes states that
\* behave alike: begun, not yet answered or decided here. (A file that arrives before the
\* upload begins is the same as one that arrives just after: Begin reads no file but the
\* upload site's, which it stores itself.)
Readable(s, p) ==
    \E t \in Begun : /\ Kind(t) = "upload" /\ txns[t].photo = p
                    /\ t \notin committed[s] \cup aborted[s] \cup refused[s]
\* blob_api's PUT completes (sha256 checked, fsync, rename): the file is here.
Ship(s, p) ==
    /\ p \notin held[s] /\ Readable(s, p)
    /\ held' = [held EXCEPT ![s] = @ \cup {p}]
    /\ UNCHANGED <<partVars, coordVars, net, late, over, crashes, timeouts, start, reqs>>
\* blob_sweep.sweep removes an unnamed file older than blob_grace_s (the age is abstracted:
\* any time). Atomic with respect to the prepare's check-and-store: PhotoFiles.claim (in
\* service.checked) resets the file's age under the lock the removal takes, and the sweep's
\* names are read after its clock. The same step is a disk losing a file nothing names yet
\* (Lose): the participant then votes no (missing_photos), and the upload site ships again.
Sweep(s, p) ==
    /\ p \in held[s] /\ ~Named(s, p) /\ Readable(s, p)
    /\ held' = [held EXCEPT ![s] = @ \ {p}]
    /\ UNCHANGED <<partVars, coordVars, net, late, over, crashes, timeouts, start, reqs>>
Lose(s, p) == Sweep(s, p)

-----------------------------------------------------------------------------

\* The initial state of a start st: nothing (st = -1, FromScratch), or the event created
\* everywhere (its create, txn 1, committed) with st photos committed everywhere before any
\* transaction of the behaviour (they take no transaction id: only the history names them),
\* uploaded at the home site (so the ballot site of their people is the home site).
InitHistory(st) ==
    [i \in 1..Max(st, 0) |-> [photo |-> Order(Photos)[i], user |-> Owner(Order(Photos)[i]),
                              site |-> Home]]

Init ==
    /\ start \in (IF FromScratch THEN {-1} ELSE {}) \cup StartVersions
    /\ exists = [s \in Sites |-> start >= 0]
    /\ photos = [s \in Sites |-> InitHistory(start)]
    /\ prepared = [s \in Sites |-> NoTxn]
    /\ refused = [s \in Sites |-> {}]
    /\ committed = [s \in Sites |-> IF start >= 0 THEN {1} ELSE {}]
    /\ aborted = [s \in Sites |-> {}]
    /\ retried = [s \in Sites |-> {}]
    /\ round = [s \in Sites |-> NoTxn]
    /\ rounds = [s \in Sites |-> 0]
    /\ ended = [s \in Sites |-> {}]
    /\ ballots = [s \in Sites |-> {}]
    /\ published = [s \in Sites |-> NoTxn]
    /\ withdrawn = [s \in Sites |-> {}]
    /\ pubCount = [s \in Sites |-> 0]
    /\ txns = IF start >= 0 THEN <<[coord |-> Home, kind |-> "create"]>> ELSE <<>>
    /\ decided = [t \in TxnIds |-> IF t = 1 /\ start >= 0 THEN "commit" ELSE "none"]
    /\ decCount = [t \in TxnIds |-> IF t = 1 /\ start >= 0 THEN 1 ELSE 0]
    /\ active = NoTxn
    /\ collecting = FALSE
    /\ reported = {}
    /\ net = IF start >= 0 THEN {DecisionMsg(1, "commit")} ELSE {}
    /\ late = {}
    /\ over = {}
    /\ crashes = 0
    /\ timeouts = 0
    /\ reqs = <<>>
    /\ held = [s \in Sites |-> {photos[s][i].photo : i \in 1..Len(photos[s])}]

Next ==
    \/ BeginCreate
    \/ \E c \in UploadSites, p \in Photos : BeginUpload(c, p)
    \/ \E v \in Sites, u \in Users : MakeRequest(v, u)
    \/ \E q \in Requests : BeginStartRound(q) \/ Withdraw(reqs[q].site, q)
    \/ CollectAtDeadline \/ CollectAgain
    \/ \E m \in net : ReceiveNo(m) \/ ReceiveReport(m)
    \/ \E t \in Begun : ReceiveYes(t) \/ Timeout(t) \/ Deadline(t) \/ Grace(t) \/ LoseBegan(t)
    \/ \E s \in Sites, m \in net : ReceivePrepare(s, m) \/ ReceiveDecision(s, m)
    \/ \E p, q \in Sites : AskAround(p, q)
    \/ \E s \in Sites, u \in Users, d \in {ACCEPT, REJECT} : CastVote(s, u, d)
    \/ \E s \in Sites : Crash(s)
    \/ \E s \in ShipTo, p \in Photos : Ship(s, p) \/ Sweep(s, p)   \* Sweep is also Lose

Spec == Init /\ [][Next]_vars

\* Liveness (DESIGN.md invariant 6, for rounds): weak fairness on the protocol's own steps
\* only: message receipt (prepares, decisions, votes, reports: every resend is the network
\* keeping the message), the coordinator's decisions, its deadline and CollectAgain timers,
\* and the participants' queries (AskOutcome). Not on crashes, timeouts, Ship or Sweep, nor on
\* what people and time do (uploads, round requests, withdrawals, votes, deadlines, the end
\* of the grace period). Every behaviour has finitely many steps that change the state (logs
\* only grow, and every kind of step is bounded), so weak fairness on the protocol's steps as
\* one action is weak fairness on each of them: both say that a behaviour ends in a state
\* where no protocol step is enabled. (One fairness condition keeps TLC fast.)
ProtocolStep ==
    \/ CollectAtDeadline \/ CollectAgain
    \/ \E m \in net : ReceiveNo(m) \/ ReceiveReport(m)
    \/ \E t \in Begun : ReceiveYes(t)
    \/ \E s \in Sites, m \in net : ReceivePrepare(s, m) \/ ReceiveDecision(s, m)
    \/ \E p, q \in Sites : AskAround(p, q)
Fairness == WF_vars(ProtocolStep)

LiveSpec == Spec /\ Fairness

-----------------------------------------------------------------------------
(* Invariants: ../shared/DESIGN.md "Invariants" *)

TypeOK ==
    /\ Spent <= Budget /\ Collections <= MaxCollections
    /\ \A s \in Sites : prepared[s] \in {NoTxn} \cup Begun /\ round[s] \in {NoTxn} \cup Begun
    /\ \A t \in TxnIds : decided[t] \in {"none", "commit", "abort", "retry", "forgot"}
    /\ \A t \in Begun : decided[t] = "retry" => Kind(t) = "publish"
    /\ \A t \in Begun : decided[t] = "forgot" => Kind(t) \in SentFirst
    /\ \A s \in Sites : retried[s] \subseteq aborted[s]
    /\ over \subseteq late
    /\ \A t \in Begun, s \in Sites : decided[t] = "none" => Cardinality(YesVotes(t, s)) <= 1
    /\ Len(reqs) <= MaxRequests
    /\ \A s \in Sites : withdrawn[s] \subseteq {q \in Requests : reqs[q].site = s}
    /\ \A s \in Sites : held[s] \subseteq Photos

\* 1. Agreement: no transaction commits at one site and aborts (or is refused) at another; a
\*    site commits only what its coordinator decided to commit, and nobody contradicts a
\*    commit decision; the event exists at a site only if its creation committed.
Agreement ==
    /\ \A t \in Begun, s1, s2 \in Sites :
          t \in committed[s1] => t \notin aborted[s2] \cup refused[s2]
    /\ \A t \in Begun, s \in Sites :
          /\ t \in committed[s] => decided[t] = "commit"
          /\ decided[t] = "commit" => t \notin aborted[s] \cup refused[s]
    /\ \A s \in Sites : exists[s] => decided[1] = "commit"

\* 1'. ... and a round publishes on all sites or aborts on all: a site that has applied the
\*    final outcome of round r's collection (a commit, or an abort but a retry) does not hold
\*    round r open; and the home site retries (a retry abort) only what failed for a site's
\*    sake before the grace period ended: no attempt is a retry once another is final.
RoundAgreement ==
    /\ \A s \in Sites : round[s] # NoTxn =>
        ~\E t \in committed[s] \cup (aborted[s] \ retried[s]) :
            Kind(t) = "publish" /\ txns[t].r = RoundNo(s)
    /\ \A t1, t2 \in Begun :
        /\ Kind(t1) = "publish" /\ Kind(t2) = "publish" /\ txns[t1].r = txns[t2].r
        /\ decided[t1] \in {"commit", "abort"}
        => t2 = t1 \/ txns[t2].attempt < txns[t1].attempt

\* 2. Same history: the committed photo sequences are prefixes of each other (version v is the
\*    same ordered photo set everywhere).
SameHistory ==
    \A s1, s2 \in Sites : IsPrefix(photos[s1], photos[s2]) \/ IsPrefix(photos[s2], photos[s1])

\* 3. Validity: a published round (committed by the coordinator, or applied at a site) has
\*    accept ballots cast before the deadline from exactly the submitters of its version, and
\*    no reject nor any other ballot at any site, ever.
ValidPublication(x) ==
    /\ x.subs # {}
    /\ \A u \in x.subs : \E b \in RoundBallots(x.r) : b.user = u /\ b.d = ACCEPT /\ b.before
    /\ \A b \in RoundBallots(x.r) : b.d = ACCEPT /\ b.user \in x.subs
Validity ==
    /\ \A t \in Begun : Kind(t) = "publish" /\ decided[t] = "commit" => ValidPublication(txns[t])
    /\ \A s \in Sites : published[s] # NoTxn =>
          /\ ValidPublication(txns[published[s]])
          /\ txns[published[s]].subs = Submitters(s)

\* 4. Freeze: no upload commits at a site while a round is open there; the published version
\*    is the round's version; a commit (a 201) is never lost: every site has applied it or
\*    holds it prepared, durably, until it does.
Freeze ==
    /\ \A s \in Sites : round[s] # NoTxn => Version(s) = txns[round[s]].version
    /\ \A s \in Sites : published[s] # NoTxn =>
          /\ Version(s) = txns[published[s]].version
          /\ txns[published[s]].version = txns[txns[published[s]].start].version
    /\ \A t \in Begun : decided[t] = "commit" =>
          \A s \in Sites : t \in committed[s] \/ prepared[s] = t

\* 5. Finality: a recorded ballot never changes (one per person, round and site; ballots are
\*    only ever added); a decision is stored once and never reversed at a site; a site
\*    publishes once and never reopens.
Finality ==
    /\ \A s \in Sites : \A b1, b2 \in ballots[s] : b1.r = b2.r /\ b1.user = b2.user => b1 = b2
    /\ \A t \in TxnIds : decCount[t] <= 1
    /\ \A s \in Sites : committed[s] \cap (aborted[s] \cup refused[s]) = {}
    /\ \A s \in Sites : pubCount[s] <= 1
    /\ \A s \in Sites : published[s] # NoTxn => round[s] = NoTxn

\* 5'. One ballot per person and round, across all sites (DESIGN.md "Votes": a person votes
\*    only at their ballot site; the opening accept, recorded at every site by the StartRound
\*    commit, is one ballot).
OneBallot ==
    \A s1, s2 \in Sites : \A b1 \in ballots[s1], b2 \in ballots[s2] :
        b1.r = b2.r /\ b1.user = b2.user => b1 = b2

\* 7. Truthful refusal: the voter's site says "no round started for your accept" only after
\*    storing Withdrawn(q), so no StartRound of request q may ever commit once it is stored:
\*    none is decided commit, none is committed at any site. (Withdraw answers IN_DOUBT while
\*    q's StartRound is prepared there and STARTED once it committed there; from then on the
\*    site refuses it, and every site must vote yes.) And a request starts one round at most:
\*    the 200 its accept gets names one round.
TruthfulRefusal ==
    /\ \A q \in Requests : q \in withdrawn[reqs[q].site] =>
          \A t \in StartsOf(q) : decided[t] # "commit" /\ \A s \in Sites : t \notin committed[s]
    /\ \A q \in Requests : \A t1, t2 \in StartsOf(q) :
          decided[t1] = "commit" /\ decided[t2] = "commit" => t1 = t2

\* 8. Photos held: a site holds the file of every photo it committed (a committed photo is never
\*    swept or lost) and of the upload it holds prepared (its yes promised it could commit it:
\*    ship, then commit; a sweep never takes what a prepared transaction names).
PhotosHeld ==
    /\ \A s \in Sites : prepared[s] # NoTxn /\ Kind(prepared[s]) = "upload" =>
          txns[prepared[s]].photo \in held[s]
    /\ \A s \in Sites : \A i \in 1..Version(s) : photos[s][i].photo \in held[s]

\* 6. Liveness, for rounds: a round whose every submitter accepted before its deadline (a
\*    StartRound of it committed; no reject can then be cast) is published at every site in
\*    the end, unless the grace period after its deadline ends first (after which sites still
\*    unreachable end it: DESIGN.md "Collect and decide"). Checked under LiveSpec's fairness,
\*    with crashes and timeouts bounded (so they stop), without symmetry (TLC's liveness
\*    checking is unsound with it).
Unanimous(r) ==
    \E t \in Begun :
        /\ Kind(t) = "start" /\ txns[t].r = r /\ decided[t] = "commit" /\ t \notin over
        /\ \A u \in txns[t].subs :
              \E b \in RoundBallots(r) : b.user = u /\ b.d = ACCEPT /\ b.before
PublishedEverywhere(r) ==
    \A s \in Sites : published[s] # NoTxn /\ txns[published[s]].r = r
GraceOver(r) == \E t \in over : txns[t].r = r
UnanimousPublishes ==
    \A r \in 1..MaxRounds : Unanimous(r) ~> (PublishedEverywhere(r) \/ GraceOver(r))

\* Symmetry: people with their photos, the sites other than home where uploads begin, and those
\* where they do not, are interchangeable.
Symmetry ==
    {x[1] @@ x[2] @@ g @@ h :
        x \in {y \in Permutations(Users) \X Permutations(Photos) :
                 \A o \in PhotoOwners : <<y[2][o[1]], y[1][o[2]]>> \in PhotoOwners},
        g \in Permutations(UploadSites \ {Home}),
        h \in Permutations(Sites \ (UploadSites \cup {Home}))}

\* Who uploads which photo, for the cfg files (they cannot write tuples): one photo each, or
\* all by one person.
RECURSIVE Pairs(_, _)
Pairs(ps, us) ==
    IF ps = {} \/ us = {} THEN {}
    ELSE LET p == CHOOSE x \in ps : TRUE
             u == CHOOSE y \in us : TRUE
         IN  {<<p, u>>} \cup Pairs(ps \ {p}, us \ {u})
OnePhotoEach == Pairs(Photos, Users)
AllByOne == LET u == CHOOSE y \in Users : TRUE IN {<<p, u>> : p \in Photos}
=============================================================================
