/**
 * The JSON text of a recorder's task records, in three parts: a record is
 * `{fixed,own,shared}` (see `Tracker.recordStartFields`). The fixed fields
 * (ids, start time and the request part) are encoded once per request and
 * appear in its start and its end record. The own fields are those of the
 * start or the end. The shared fields (process facts and tags) are the
 * same for every request of the recorder, apart from the tags of the
 * client address source, of an abort, and of a request left out by
 * sampling. Everything is written by string
 * concatenation from parts encoded at setup, so a request costs no objects
 * to stringify.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import { CaptureEncoder, type CaptureSettings, type RequestFacts } from '../task/capture'
import { OUTCOME_TAG } from '../task/cleanup-end'
import { CLIENT_IP_SOURCE_TAG, SAMPLED_OUT_TAG } from '../task/derived'
import { encodeFields, encodeString, flattenString } from '../task/wire'
import type { ProcessFacts } from './process-facts'
import { clientErrorStatus, type ClientIpSource, type RequestOutcome } from './request-end'

/**
 * Response fields of a task that ended before any response head was sent.
 * When the client went away, no response was sent, and the wire protocol
 * has a null status for that. When the server's `requestTimeout` cut the
 * request off, Node (and Fastify) sent 408. When Node's HTTP parser
 * rejected the request, they sent the status of `clientErrorStatus()`.
 */
const UNSENT_RESPONSE_FIELDS: Record<'aborted' | 'timeout', string> = {
  aborted: encodeFields({ status_code: null, status_message: null, response_headers: null }),
  timeout: encodeStatusOnly(408),
}

/** Every outcome, whose shared fields are encoded at setup. */
const OUTCOMES: readonly RequestOutcome[] = ['completed', 'aborted', 'timeout', 'rejected']

/** Fields of a start record after `updated_at`, none of them known before the end. */
const START_RESPONSE_FIELDS = encodeFields({
  ended_at: null,
  recorded_successfully: null,
  status_code: null,
  status_message: null,
  response_headers: null,
})

/** Task ids of this process: `<pid>-<start time in base 36>-<sequence>`, the sequence shared by every recorder. */
const TASK_ID_FIELD = `"task_id":"${process.pid}-${Date.now().toString(36)}-`
let taskSequence = 0

export interface TaskFieldSettings {
  capture: CaptureSettings
  /** Facts of the process, encoded once into every record. */
  process: ProcessFacts & { processor_name: string }
  tags: Record<string, string>
  /** `<recorder number>.`, the part of `process_internal_id` before the slot. */
  internalIdPrefix: string
}

export class TaskFields {
  readonly #capture: CaptureEncoder
  readonly #internalIdPrefix: string
  /** `,"host_name":…,"processor_name":…,"tags":{…}` by client address source and outcome. */
  readonly #sharedFields: Record<ClientIpSource, Record<RequestOutcome, string>>
  /** The same for the start record of a request left out by sampling, with `web_top.sampled_out`. */
  readonly #sampledOutFields: Record<ClientIpSource, string>
  /** `","process_internal_id":"<prefix><slot>","started_at":"` for each slot seen. */
  readonly #slotFields: string[] = []
  #lastTaskName: string | null = null
  #lastTaskNameJson = 'null'

  constructor(settings: TaskFieldSettings) {
    this.#capture = new CaptureEncoder(settings.capture)
    this.#internalIdPrefix = settings.internalIdPrefix
    const encodeShared = (source: ClientIpSource, outcome: RequestOutcome, sampledOut = false) => {
      const tags = {
        ...settings.tags,
        [CLIENT_IP_SOURCE_TAG]: source,
        ...(outcome === 'completed' ? {} : { [OUTCOME_TAG]: outcome }),
        ...(sampledOut ? { [SAMPLED_OUT_TAG]: 'true' } : {}),
      }
      return flattenString(`,${encodeFields({ ...settings.process, tags })}`)
    }
    const encodeBySource = (source: ClientIpSource) =>
      Object.fromEntries(OUTCOMES.map((outcome) => [outcome, encodeShared(source, outcome)])) as Record<
        RequestOutcome,
        string
      >
    this.#sharedFields = { socket: encodeBySource('socket'), proxy: encodeBySource('proxy') }
    this.#sampledOutFields = {
      socket: encodeShared('socket', 'completed', true),
      proxy: encodeShared('proxy', 'completed', true),
    }
  }

  /** Encodes the request part: `"protocol":…,"request_headers":[…]`. */
  request(req: IncomingMessage, facts: RequestFacts): string {
    return this.#capture.encodeRequest(req, facts)
  }

  /** Encodes the fields that a request's start and end records both contain. */
  fixed(slot: number, startedAt: string, requestFields: string): string {
    const slotFields = this.#slotFields[slot] ?? this.#learnSlot(slot)
    return `${TASK_ID_FIELD}${++taskSequence}${slotFields}${startedAt}",${requestFields}`
  }

  /** Returns the process facts and tags of a record: empty or starting with a comma. */
  shared(source: ClientIpSource, outcome: RequestOutcome): string {
    return this.#sharedFields[source][outcome]
  }

  /** Returns the process facts and tags of a start record, tagged `web_top.sampled_out` unless `sampled`. */
  startShared(source: ClientIpSource, sampled: boolean): string {
    return sampled ? this.#sharedFields[source].completed : this.#sampledOutFields[source]
  }

  /** Encodes the fields of a start record after the fixed ones. `taskName` is encoded as `#encodeTaskName()` describes. */
  start(taskName: unknown, startedAt: string): string {
    const name = this.#encodeTaskName(taskName)
    return `"task_name":${name},"updated_at":"${startedAt}",${START_RESPONSE_FIELDS}`
  }

  /**
   * Encodes the fields of an end record after the fixed ones. A response
   * that never reached the client is recorded without a status (`unsent`).
   */
  end(
    res: ServerResponse,
    taskName: unknown,
    endedAt: string,
    outcome: RequestOutcome,
    unsent: boolean,
  ): string {
    const name = this.#encodeTaskName(taskName)
    const response = unsent && outcome !== 'completed' ? unsentResponseFields(res, outcome) : this.#capture.encodeResponse(res)
    const completed = outcome === 'completed'
    return (
      `"task_name":${name},"updated_at":"${endedAt}","ended_at":"${endedAt}",` +
      `"recorded_successfully":${completed},${response}`
    )
  }

  /**
   * Encodes a route pattern. Most requests repeat the previous one's, whose
   * encoding is kept. The wire protocol has a string or null, so another
   * value given by an app, such as the RegExp that `@koa/router` matched, is
   * stored as `String(value)`, and as null when that throws.
   */
  #encodeTaskName(taskName: unknown): string {
    if (taskName === this.#lastTaskName) return this.#lastTaskNameJson
    if (typeof taskName !== 'string') return taskName == null ? 'null' : encodeNameOfValue(taskName)

    const json = encodeString(taskName)
    this.#lastTaskName = taskName
    this.#lastTaskNameJson = json
    return json
  }

  #learnSlot(slot: number): string {
    const internalId = `${this.#internalIdPrefix}${slot}`
    const fields = flattenString(`","process_internal_id":${encodeString(internalId)},"started_at":"`)
    this.#slotFields[slot] = fields
    return fields
  }
}

/** Encodes `String(value)`, or null when the conversion throws. */
function encodeNameOfValue(value: unknown): string {
  let name: string
  try {
    name = String(value)
  } catch {
    return 'null'
  }
  return encodeString(name)
}

/** Returns the response fields of a request whose client never got the response head of `res`. */
function unsentResponseFields(res: ServerResponse, outcome: Exclude<RequestOutcome, 'completed'>): string {
  if (outcome !== 'rejected') return UNSENT_RESPONSE_FIELDS[outcome]
  // Rare enough to be encoded each time.
  return encodeStatusOnly(clientErrorStatus(res.req))
}

/** Encodes the response fields of a response that Node sent itself: a status line with no header recorded. */
function encodeStatusOnly(status: number): string {
  return encodeFields({ status_code: status, status_message: `${status} ${STATUS_CODES[status]}`, response_headers: null })
}
