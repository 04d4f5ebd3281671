/** The sign-in / sign-up card shown while nobody is signed in. */
import { type Api, ApiError } from '../api/client';
import { byId, fill, h } from '../dom';

export function renderAuth(api: Api, onSignedIn: (token: string, email: string) => void): void {
  const root = byId('auth');
  const email = h('input', { id: 'auth-email', type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'auth-password',
    type: 'password',
    name: 'password',
    autocomplete: 'current-password',
    minlength: 8,
    required: true,
  });
  const message = h('p', { class: 'form-error', role: 'alert' });
  const signIn = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const signUp = h('button', { type: 'button', class: 'secondary' }, 'Create account');
  const form = h(
    'form',
    { class: 'auth-card', 'aria-labelledby': 'auth-title', novalidate: true },
    h('h1', { id: 'auth-title' }, 'Exness demo trading'),
    h('p', { class: 'muted' }, 'Trade BTC, ETH and SOL CFDs with a 10,000 USD demo account.'),
    h('label', { for: 'auth-email' }, 'Email'),
    email,
    h('label', { for: 'auth-password' }, 'Password'),
    password,
    message,
    h('div', { class: 'auth-actions' }, signIn, signUp),
  );

  const busy = (on: boolean) => {
    signIn.disabled = on;
    signUp.disabled = on;
  };
  const run = async (create: boolean) => {
    message.textContent = '';
    busy(true);
    try {
      if (create) await api.signup(email.value.trim(), password.value);
      const session = await api.signin(email.value.trim(), password.value);
      onSignedIn(session.token, email.value.trim());
    } catch (e) {
      message.textContent = e instanceof ApiError ? e.message : 'Something went wrong.';
    } finally {
      busy(false);
    }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void run(false);
  });
  signUp.addEventListener('click', () => void run(true));
  fill(root, form);
}
