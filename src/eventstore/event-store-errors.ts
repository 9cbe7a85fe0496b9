import { AppError } from '../errors/app-error.ts';

export class WrongExpectedVersion extends AppError {
  constructor(streamId: string, expected: number, actual: number | null) {
    super('WRONG_EXPECTED_VERSION', `stream ${streamId} is not at version ${expected}${actual === null ? '' : ` (it is at ${actual})`}`, true, {
      streamId,
      expected,
      actual,
    });
  }
}

export class EventStoreConfigError extends AppError {
  constructor(message: string) {
    super('EVENTSTORE_MISCONFIGURED', message, false);
  }
}
